export interface CachedToken {
  token: string;
  /** Milliseconds since the epoch after which the token is not used again. */
  expiresAt: number;
}

export interface TokenCache {
  /** The cached token for `scope`, or the one fetch in flight for it, or a new fetch. */
  get(scope: string): Promise<string>;
  /** Forgets `scope`'s token when it is still `token` (a 401 said it no longer works). */
  invalidate(scope: string, token: string): void;
}

const sweepAt = 1000;

/**
 * Tokens per scope string, each kept until it expires. Concurrent requests for one scope share one fetch; a
 * failed fetch is not cached, so the next request tries again.
 */
export function createTokenCache(deps: {
  fetch: (scope: string) => Promise<CachedToken>;
  now?: () => number;
}): TokenCache {
  const now = deps.now ?? Date.now;
  const tokens = new Map<string, CachedToken>();
  const inFlight = new Map<string, Promise<string>>();
  // A proxy asks for one scope per repository and action set: lapsed tokens go once there are many.
  const forgetExpired = () => {
    for (const [scope, token] of tokens) if (token.expiresAt <= now()) tokens.delete(scope);
  };

  return {
    get(scope) {
      const cached = tokens.get(scope);
      if (cached && cached.expiresAt > now()) return Promise.resolve(cached.token);
      const pending = inFlight.get(scope);
      if (pending) return pending;
      const fetching = deps
        .fetch(scope)
        .then((fetched) => {
          if (tokens.size >= sweepAt) forgetExpired();
          tokens.set(scope, fetched);
          return fetched.token;
        })
        .finally(() => inFlight.delete(scope));
      inFlight.set(scope, fetching);
      return fetching;
    },
    invalidate(scope, token) {
      if (tokens.get(scope)?.token === token) tokens.delete(scope);
    },
  };
}
