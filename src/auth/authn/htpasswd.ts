import { stat } from "node:fs/promises";
import type { Authenticator, Identity } from "./authenticator.js";
import { CredentialsRejected } from "./authenticator.js";
import { readHtpasswd, stampOf, verifyPassword, type HtpasswdEntry } from "./htpasswd-file.js";

export interface HtpasswdOptions {
  file: string;
  /** Groups by name, listing their members: htpasswd has no groups of its own. */
  groups: Readonly<Record<string, readonly string[]>>;
  /** Called once per bcrypt comparison; metrics and tests count them. */
  onCompare?: () => void;
}

/** Users from an htpasswd file, re-read whenever the file changes (registry:2 reads it once at start). */
export function createHtpasswdAuthenticator(options: HtpasswdOptions): Authenticator & { users(): Promise<string[]> } {
  let entries = new Map<string, HtpasswdEntry>();
  let loadedStamp = "";

  async function current(): Promise<Map<string, HtpasswdEntry>> {
    const info = await stat(options.file).catch(() => undefined);
    const fileStamp = info ? `${info.mtimeMs}:${info.size}:${info.ino}` : "absent";
    if (fileStamp !== loadedStamp) {
      entries = await readHtpasswd(options.file);
      loadedStamp = fileStamp;
    }
    return entries;
  }

  const groupsOf = (user: string) =>
    Object.entries(options.groups)
      .filter(([, members]) => members.includes(user))
      .map(([group]) => group);

  const identity = (entry: HtpasswdEntry): Identity => ({
    name: entry.user,
    groups: groupsOf(entry.user),
    source: "htpasswd",
    credentialStamp: stampOf(entry.hash),
  });

  return {
    source: "htpasswd",

    async authenticate(username, password) {
      const entry = (await current()).get(username);
      if (!entry) return undefined;
      options.onCompare?.();
      if (!(await verifyPassword(password, entry.hash))) throw new CredentialsRejected();
      return identity(entry);
    },

    async lookup(username) {
      const entry = (await current()).get(username);
      return entry ? identity(entry) : undefined;
    },

    async users() {
      return [...(await current()).keys()].sort();
    },
  };
}
