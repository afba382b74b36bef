import { createHash, randomUUID } from "node:crypto";
import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from "jose";
import type { ResourceAccess } from "./scope.js";
import type { SigningKeyring } from "./signing-keys.js";

export interface TokenSettings {
  issuer: string;
  /** The `service` of the challenge and the token's `aud`. */
  service: string;
  ttlSeconds: number;
  /**
   * Reads the keys again now: a token signed by a key this process has not loaded yet (another server
   * process rotated it a moment ago) is checked against the keys on disk before it is refused.
   */
  reload?: () => Promise<void>;
  now?: () => number;
}

export interface IssuedToken {
  token: string;
  expiresIn: number;
  issuedAt: string;
}

export interface AccessClaims {
  subject: string;
  access: ResourceAccess[];
  expiresAt: number;
}

export class TokenInvalid extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "TokenInvalid";
  }
}

/** `nbf` sits a few seconds in the past so a registry whose clock runs slightly behind still accepts it. */
const notBeforeSkewSeconds = 5;

/**
 * Issues and verifies the registry's bearer tokens (distribution `docs/spec/auth/jwt.md`): signed by the
 * current key with `x5c` holding its certificate, so registry 2.x and 3.x configured with our CA as
 * `rootcertbundle` verify them too.
 */
export function createTokens(keyring: () => SigningKeyring, settings: TokenSettings) {
  const now = () => Math.floor((settings.now ?? Date.now)() / 1000);
  const cache = new Map<string, AccessClaims>();
  const maxCached = 10_000;
  // At most one reload a second, whatever kids forged tokens carry.
  let lastReload = 0;
  let reloading: Promise<void> | undefined;
  async function reloadForUnknownKey(): Promise<void> {
    if (!settings.reload) return;
    if (!reloading && Date.now() - lastReload >= 1000) {
      lastReload = Date.now();
      reloading = settings.reload().finally(() => (reloading = undefined));
    }
    await reloading;
  }

  return {
    async issue(subject: string, access: ResourceAccess[]): Promise<IssuedToken> {
      const { current } = keyring();
      const issuedAt = now();
      const token = await new SignJWT({ access })
        .setProtectedHeader({ alg: current.alg, typ: "JWT", kid: current.kid, x5c: [current.certificateBase64] })
        .setIssuer(settings.issuer)
        .setSubject(subject)
        .setAudience(settings.service)
        .setIssuedAt(issuedAt)
        .setNotBefore(issuedAt - notBeforeSkewSeconds)
        .setExpirationTime(issuedAt + settings.ttlSeconds)
        .setJti(randomUUID())
        .sign(current.privateKey);
      return { token, expiresIn: settings.ttlSeconds, issuedAt: new Date(issuedAt * 1000).toISOString() };
    },

    /** Verifies a bearer token; verified tokens are remembered by hash until they expire. */
    async verify(token: string): Promise<AccessClaims> {
      const id = createHash("sha256").update(token).digest("base64");
      const cached = cache.get(id);
      if (cached && cached.expiresAt > now()) return cached;
      cache.delete(id);
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(
          token,
          async (header) => {
            const known = () => keyring().verifying.find((k) => k.kid === header.kid);
            if (!known()) await reloadForUnknownKey();
            const key = known();
            if (!key) throw new TokenInvalid("the token was signed by a key this server does not know");
            if (header.alg !== key.alg) throw new TokenInvalid("the token's algorithm does not fit its key");
            return key.publicKey;
          },
          {
            issuer: settings.issuer,
            audience: settings.service,
            algorithms: ["ES256", "RS256"],
            currentDate: new Date(now() * 1000),
            requiredClaims: ["exp", "sub"],
          },
        ));
      } catch (error) {
        if (error instanceof TokenInvalid) throw error;
        if (error instanceof joseErrors.JOSEError) throw new TokenInvalid(error.message);
        throw new TokenInvalid("malformed token");
      }
      const claims: AccessClaims = {
        subject: String(payload.sub),
        access: parseAccess(payload.access),
        expiresAt: payload.exp as number,
      };
      if (cache.size >= maxCached) cache.delete(cache.keys().next().value as string);
      cache.set(id, claims);
      return claims;
    },
  };
}

export type Tokens = ReturnType<typeof createTokens>;

function parseAccess(value: unknown): ResourceAccess[] {
  if (!Array.isArray(value)) throw new TokenInvalid("the token has no access claim");
  return value.map((entry) => {
    const { type, name, actions } = (entry ?? {}) as Record<string, unknown>;
    if ((type !== "repository" && type !== "registry") || typeof name !== "string" || !Array.isArray(actions)) {
      throw new TokenInvalid("the token's access claim is malformed");
    }
    return { type, name, actions: actions.filter((a): a is string => typeof a === "string") };
  });
}
