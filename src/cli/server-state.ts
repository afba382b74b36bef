import { existsSync } from "node:fs";
import { UsageError } from "./errors.js";

/** The flag that points a command at the server's state: `--certs DIR` for keys and users, `--data DIR` for storage. */
export type StateFlag = "--certs DIR" | "--data DIR";

/**
 * What an admin command needs of the server's state was not where it looked. Read-only commands never
 * create it: they say where they looked and which flag points at the right place, and exit 2.
 */
export function missingState(what: string, path: string, flag: StateFlag): UsageError {
  return new UsageError(
    `${what} is not in ${path}: this is not where a Portcullis server keeps its state. ` +
      `Pass ${flag} (or --config FILE) of the server, or set one up with "portcullis init"`,
  );
}

/** Throws `missingState` unless `path` exists. */
export function requireExisting(path: string, what: string, flag: StateFlag): void {
  if (!existsSync(path)) throw missingState(what, path, flag);
}
