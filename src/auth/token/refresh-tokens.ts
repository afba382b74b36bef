import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { writeSecret } from "../../fs/atomic-file.js";
import { readIfExists } from "../../fs/read-if-exists.js";
import type { Identity } from "../authn/authenticator.js";

export interface RefreshClaims {
  sub: string;
  src: Identity["source"];
  /** The user's credential stamp when the token was issued: a password change revokes the token. */
  cred: string;
  aud: string;
  iat: number;
  exp: number;
}

const prefix = "pcr1.";

/**
 * Refresh tokens (docker's "identity token"): opaque to clients, an HMAC over who and when, with a secret of
 * their own so rotating the access-token signing key leaves them valid. They never rotate (docker stores the
 * first one for good, moby #39718); each use re-checks the user, and a password change revokes them.
 */
export function createRefreshTokens(secret: Buffer, options: { ttlDays: number; now?: () => number }) {
  const now = () => Math.floor((options.now ?? Date.now)() / 1000);
  const mac = (payload: string) => createHmac("sha256", secret).update(payload).digest();

  return {
    issue(identity: Identity, service: string): string {
      const iat = now();
      const claims: RefreshClaims = {
        sub: identity.name,
        src: identity.source,
        cred: identity.credentialStamp,
        aud: service,
        iat,
        exp: iat + options.ttlDays * 86_400,
      };
      const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
      return `${prefix}${payload}.${mac(payload).toString("base64url")}`;
    },

    /** The claims of an authentic, unexpired token for this service; undefined for anything else. */
    read(token: string, service: string): RefreshClaims | undefined {
      if (!token.startsWith(prefix)) return undefined;
      const [payload, signature, extra] = token.slice(prefix.length).split(".");
      if (!payload || !signature || extra !== undefined) return undefined;
      const expected = mac(payload);
      const given = Buffer.from(signature, "base64url");
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
      let claims: RefreshClaims;
      try {
        claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as RefreshClaims;
      } catch {
        return undefined;
      }
      if (claims.aud !== service || typeof claims.exp !== "number" || claims.exp < now()) return undefined;
      return claims;
    },
  };
}

export type RefreshTokens = ReturnType<typeof createRefreshTokens>;

/** The refresh-token secret, created once (0600). */
export async function loadRefreshSecret(path: string): Promise<Buffer> {
  const existing = await readIfExists(path);
  if (existing && /^[0-9a-f]{64}$/.test(existing.trim())) return Buffer.from(existing.trim(), "hex");
  const secret = randomBytes(32);
  await writeSecret(path, `${secret.toString("hex")}\n`);
  return secret;
}
