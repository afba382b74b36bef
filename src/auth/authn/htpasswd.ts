import { stat } from "node:fs/promises";
import type { Logger } from "../../log.js";
import type { Authenticator, Identity } from "./authenticator.js";
import { groupsOf } from "./groups.js";
import { CredentialsRejected } from "./authenticator.js";
import { readHtpasswd, stampOf, verifyPassword, type HtpasswdEntry } from "./htpasswd-file.js";

export interface HtpasswdOptions {
  file: string;
  /** Groups by name, listing their members: htpasswd has no groups of its own. */
  groups: Readonly<Record<string, readonly string[]>>;
  /** Called once per bcrypt comparison; metrics and tests count them. */
  onCompare?: () => void;
  logger?: Logger;
}

/** Users from an htpasswd file, re-read whenever the file changes (registry:2 reads it once at start). */
export function createHtpasswdAuthenticator(
  options: HtpasswdOptions,
): Authenticator & { commonCost(): number | undefined; setGroups(groups: HtpasswdOptions["groups"]): void } {
  let groups = options.groups;
  // The users as last read; requests that arrive while a read is in flight wait for it, so none of them
  // is told "unknown user" by the empty map a fresh process starts with.
  let entries: Promise<Map<string, HtpasswdEntry>> = Promise.resolve(new Map());
  let latest = new Map<string, HtpasswdEntry>();
  let loadedStamp = "";

  async function load(previous: Promise<Map<string, HtpasswdEntry>>, first: boolean) {
    try {
      latest = await readHtpasswd(options.file);
      if (!first) options.logger?.info({ file: options.file, users: latest.size }, "htpasswd users reloaded");
      return latest;
    } catch (error) {
      // One bad line (a hash from plain `htpasswd`) must not lock every user out: keep the last good file.
      options.logger?.error(
        { file: options.file, reason: (error as Error).message },
        "htpasswd file not reloaded; the previous users stay",
      );
      return previous;
    }
  }

  async function current(): Promise<Map<string, HtpasswdEntry>> {
    const info = await stat(options.file).catch(() => undefined);
    const fileStamp = info ? `${info.mtimeMs}:${info.size}:${info.ino}` : "absent";
    if (fileStamp !== loadedStamp) {
      const first = loadedStamp === "";
      loadedStamp = fileStamp;
      entries = load(entries, first);
    }
    return entries;
  }

  const identity = (entry: HtpasswdEntry): Identity => ({
    name: entry.user,
    groups: groupsOf(groups, entry.user),
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

    /** The bcrypt cost most users' hashes have, so an unknown user can be made to cost as much. */
    commonCost() {
      const counts = new Map<number, number>();
      for (const { hash } of latest.values()) {
        const cost = Number(hash.slice(4, 6));
        counts.set(cost, (counts.get(cost) ?? 0) + 1);
      }
      return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
    },

    /** The config's groups changed (a reload): identities from now on get the new ones. */
    setGroups(next) {
      groups = next;
    },

    async lookup(username) {
      const entry = (await current()).get(username);
      return entry ? identity(entry) : undefined;
    },
  };
}
