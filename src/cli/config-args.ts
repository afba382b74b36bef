import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { loadConfig } from "../config/loader.js";
import type { Config } from "../config/schema.js";
import { stringFlag, type ParsedArgs } from "./args.js";

/** The flags every command takes, so an admin command acts on the same server as `serve`. */
export const commonFlags = ["config", "data", "certs"] as const;

/** The config every command reads: the file, PORTCULLIS_* variables, then these flags. */
export async function configFromArgs(
  args: ParsedArgs,
  extra: Record<string, unknown> = {},
  options: { secrets?: boolean } = {},
): Promise<Readonly<Config>> {
  const overrides: Record<string, unknown> = { ...extra };
  for (const key of ["data", "certs", "listen", "upstream"]) {
    const value = stringFlag(args, key);
    if (value !== undefined) overrides[key] = value;
  }
  return loadConfig({ file: stringFlag(args, "config"), overrides, secrets: options.secrets });
}

/** The config as an admin command reads it: without the server's secrets (an LDAP password) in its shell. */
export function adminConfigFromArgs(args: ParsedArgs): Promise<Readonly<Config>> {
  return configFromArgs(args, {}, { secrets: false });
}

/** The config file a command read: `--config`, or `portcullis.yaml` in the working directory when it is there. */
export function configFileUsed(args: ParsedArgs, cwd = process.cwd()): string | undefined {
  const given = stringFlag(args, "config");
  if (given !== undefined) return resolve(cwd, given);
  const found = resolve(cwd, "portcullis.yaml");
  return existsSync(found) ? found : undefined;
}

/**
 * The flags that point an admin command at this server from any directory: the config file it read, and
 * the data and certs directories (absolute) unless that file alone names them. For the hints in the banner.
 */
export function adminFlags(args: ParsedArgs, config: Pick<Config, "data" | "certs">, cwd = process.cwd()): string[] {
  const file = configFileUsed(args, cwd);
  const flags = file ? ["--config", quote(file)] : [];
  if (!file || stringFlag(args, "data") !== undefined) flags.push("--data", quote(config.data));
  if (!file || stringFlag(args, "certs") !== undefined) flags.push("--certs", quote(config.certs));
  return flags;
}

/** A path as a POSIX shell reads it back. */
function quote(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`;
}

/**
 * Writes a config file that `init` or `migrate` composed and loads it back as serve will: a file that
 * does not validate is removed again and the error (naming the key) is thrown, so nothing half-made stays.
 */
export async function writeNewConfig(path: string, text: string): Promise<Readonly<Config>> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text, { mode: 0o644 });
  try {
    return await loadConfig({ file: path });
  } catch (error) {
    await rm(path, { force: true });
    throw error;
  }
}
