import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface Session {
  id: string;
  user: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

export interface SessionsDeps {
  key: Buffer;
  /** Signed-out sessions, one empty file each, shared by every server process. */
  revokedDir: string;
  lifetimeMs: number;
  now?: () => number;
}

export const sessionCookieName = "__Host-portcullis-console";
const sessionIdPattern = /^[A-Za-z0-9_-]{22}$/;

/**
 * Sessions as signed, expiring cookies (`id.user.expiry.hmac`): any process holding the key checks them
 * without shared memory; sign-out writes the id to a directory every process reads.
 */
export function createSessions(deps: SessionsDeps) {
  const now = deps.now ?? Date.now;
  const sign = (text: string) => createHmac("sha256", deps.key).update(text).digest("base64url");
  const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
  const revokedFile = (id: string) => join(deps.revokedDir, id);

  return {
    lifetimeMs: deps.lifetimeMs,

    issue(user: string): { cookie: string; session: Session } {
      const session = { id: randomBytes(16).toString("base64url"), user, expiresAt: now() + deps.lifetimeMs };
      const body = `${session.id}.${Buffer.from(user).toString("base64url")}.${session.expiresAt}`;
      return { cookie: `${body}.${sign(`session\n${body}`)}`, session };
    },

    read(cookie: string | undefined): Session | undefined {
      const parts = cookie?.split(".") ?? [];
      if (parts.length !== 4) return undefined;
      const [id, user, expiry, mac] = parts as [string, string, string, string];
      if (!sessionIdPattern.test(id) || !same(mac, sign(`session\n${id}.${user}.${expiry}`))) return undefined;
      const expiresAt = Number(expiry);
      if (!(expiresAt > now()) || existsSync(revokedFile(id))) return undefined;
      return { id, user: Buffer.from(user, "base64url").toString("utf8"), expiresAt };
    },

    async revoke(session: Session): Promise<void> {
      await mkdir(deps.revokedDir, { recursive: true, mode: 0o700 });
      await writeFile(revokedFile(session.id), `${session.expiresAt}\n`, { mode: 0o600 });
    },

    /** The form token of a session: bound to it, so another session's token (or none) is refused. */
    csrfToken(session: Session): string {
      return sign(`csrf\n${session.id}`);
    },

    checkCsrf(session: Session, token: string | null): boolean {
      return token !== null && same(token, sign(`csrf\n${session.id}`));
    },
  };
}

export type Sessions = ReturnType<typeof createSessions>;

export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return value.join("=");
  }
  return undefined;
}
