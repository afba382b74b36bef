import { createHmac, randomBytes } from "node:crypto";
import bcrypt from "bcryptjs";
import type { Authenticator, Identity } from "./authenticator.js";
import { CredentialsRejected } from "./authenticator.js";
import { bcryptCost, verifyPassword } from "./htpasswd-file.js";

export interface CredentialCheckOptions {
  authenticators: readonly Authenticator[];
  /** How long a verified user+password pair is remembered. */
  cacheSeconds: number;
  /** The bcrypt cost of the hashes users have (Apache's `htpasswd -B` writes 5): unknown users are compared at it. */
  dummyCost?: () => number;
  now?: () => number;
  maxEntries?: number;
}

/**
 * Asks each authenticator in turn. A verified pair is remembered under a keyed hash of user and password
 * (the password itself is never kept), so a push that sends Basic credentials with every token request
 * pays for bcrypt once. When nobody knows the user, a dummy bcrypt comparison runs anyway, so an unknown
 * user costs what a known one does.
 */
export function createCredentialCheck(options: CredentialCheckOptions) {
  const key = randomBytes(32);
  const now = options.now ?? Date.now;
  const maxEntries = options.maxEntries ?? 10_000;
  const cache = new Map<string, { identity: Identity; expires: number }>();
  const dummyHashes = new Map<number, string>();
  const dummyHash = () => {
    const cost = options.dummyCost?.() ?? bcryptCost;
    let hash = dummyHashes.get(cost);
    if (!hash) dummyHashes.set(cost, (hash = bcrypt.hashSync(randomBytes(16).toString("hex"), cost)));
    return hash;
  };

  const cacheKey = (username: string, password: string) =>
    createHmac("sha256", key).update(username).update("\0").update(password).digest("base64");

  /** A remembered htpasswd user whose password changed since is not let in on the old one (a cheap check). */
  async function stillCurrent(identity: Identity): Promise<boolean> {
    if (identity.source !== "htpasswd") return true;
    const source = options.authenticators.find((a) => a.source === identity.source);
    const fresh = await source?.lookup(identity.name);
    return fresh?.credentialStamp === identity.credentialStamp;
  }

  return {
    async verify(username: string, password: string): Promise<Identity> {
      if (!username || !password) throw new CredentialsRejected();
      const id = cacheKey(username, password);
      const hit = cache.get(id);
      if (hit && hit.expires > now() && (await stillCurrent(hit.identity))) return hit.identity;
      cache.delete(id);
      for (const authenticator of options.authenticators) {
        const identity = await authenticator.authenticate(username, password);
        if (!identity) continue;
        if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
        cache.set(id, { identity, expires: now() + options.cacheSeconds * 1000 });
        return identity;
      }
      await verifyPassword(password, dummyHash());
      throw new CredentialsRejected();
    },

    /** Drops every remembered sign-in, so the next one is verified (and its groups looked up) afresh. */
    forget(): void {
      cache.clear();
    },

    /** The user as the authenticators know them now, for refresh grants; undefined when gone. */
    async lookup(username: string): Promise<Identity | undefined> {
      for (const authenticator of options.authenticators) {
        const identity = await authenticator.lookup(username);
        if (identity) return identity;
      }
      return undefined;
    },
  };
}

export type CredentialCheck = ReturnType<typeof createCredentialCheck>;
