import { loadConfig } from "../config/loader.js";
import type { Config } from "../config/schema.js";
import { stringFlag, type ParsedArgs } from "./args.js";

/** The flags every command takes, so an admin command acts on the same server as `serve`. */
export const commonFlags = ["config", "data", "certs"] as const;

/** The config every command reads: the file, PORTCULLIS_* variables, then these flags. */
export async function configFromArgs(args: ParsedArgs, extra: Record<string, unknown> = {}): Promise<Readonly<Config>> {
  const overrides: Record<string, unknown> = { ...extra };
  for (const key of ["data", "certs", "listen", "upstream"]) {
    const value = stringFlag(args, key);
    if (value !== undefined) overrides[key] = value;
  }
  return loadConfig({ file: stringFlag(args, "config"), overrides });
}
