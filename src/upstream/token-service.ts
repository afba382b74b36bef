import type { IncomingMessage } from "node:http";
import { UpstreamError } from "./errors.js";
import type { CachedToken } from "./token-cache.js";
import type { Transport } from "./transport.js";

/** A token answer is small; a longer one is not a token service. */
const maxAnswerBytes = 64 * 1024;
/** distribution `docs/spec/auth/token.md`: without `expires_in`, a token lasts 60 seconds. */
const defaultLifetimeSeconds = 60;

export interface TokenServiceDeps {
  upstream: string;
  transport: Transport;
  /** `Basic …` with the gateway's account, or none for an anonymous token. */
  basicAuthorization?: string;
  now?: () => number;
}

/**
 * A token from an upstream's token service (distribution `docs/spec/auth/token.md`): `GET realm?service=S&scope=…`
 * with the gateway's Basic credentials, answering `token` or `access_token` and `expires_in`. `scope` may hold
 * several scopes separated by spaces, each sent as its own `scope` parameter.
 */
export async function fetchUpstreamToken(
  deps: TokenServiceDeps,
  challenge: { realm: string; service?: string },
  scope: string,
): Promise<CachedToken> {
  const now = deps.now ?? Date.now;
  const realm = new URL(challenge.realm);
  if (challenge.service !== undefined) realm.searchParams.set("service", challenge.service);
  for (const one of scope.split(" ").filter(Boolean)) realm.searchParams.append("scope", one);
  const where = `the token service ${realm.origin}${realm.pathname}`;
  const started = now();
  const res = await deps.transport.send(realm, {
    method: "GET",
    headers: {
      Accept: "application/json",
      ...(deps.basicAuthorization ? { Authorization: deps.basicAuthorization } : {}),
    },
  });
  const body = await readSmall(res, maxAnswerBytes);
  const status = res.statusCode ?? 0;
  if (status === 401 || status === 403)
    throw new UpstreamError(
      deps.upstream,
      "credentials",
      deps.basicAuthorization
        ? `${where} refused the gateway's credentials (${status}); check upstreams.${deps.upstream}.username and its password`
        : `${where} refused an anonymous token (${status}); set upstreams.${deps.upstream}.username and a password`,
    );
  if (status !== 200 || body === undefined)
    throw new UpstreamError(deps.upstream, "token-service", `${where} answered ${status} instead of a token`);
  let answer: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    answer = JSON.parse(body.toString("utf8")) as typeof answer;
  } catch {
    throw new UpstreamError(deps.upstream, "token-service", `${where} answered something that is not JSON`);
  }
  const token = typeof answer.token === "string" && answer.token ? answer.token : answer.access_token;
  if (typeof token !== "string" || !token)
    throw new UpstreamError(deps.upstream, "token-service", `${where} answered without a token`);
  const seconds =
    typeof answer.expires_in === "number" && answer.expires_in > 0 ? answer.expires_in : defaultLifetimeSeconds;
  // Counted from when it was asked for, and a little short of it, so no request starts with a token about to lapse.
  const lifetimeMs = seconds * 1000;
  return { token, expiresAt: started + lifetimeMs - Math.min(10_000, lifetimeMs / 4) };
}

async function readSmall(res: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
