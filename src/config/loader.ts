import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { ZodDefault, ZodObject, ZodOptional, type ZodIssue } from "zod";
import { configObjectSchema, configSchema, type Config } from "./schema.js";

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export interface LoadOptions {
  /** `--config FILE`; when absent, `portcullis.yaml` in the working directory is read if it exists. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Command-line flags, the last word: `{ listen: "…" }`, `{ data: "…" }`. */
  overrides?: Record<string, unknown>;
  cwd?: string;
  /**
   * Check that the environment variables the config names for secrets are set (default). Commands that
   * never use those secrets (user, ca, audit) skip it, so they run in a shell without the server's secrets.
   */
  secrets?: boolean;
}

/**
 * Config from the YAML file, then `PORTCULLIS_*` environment variables, then flags; validated once and
 * frozen. Relative paths in the file are taken from the file's directory; elsewhere from the working one.
 */
export async function loadConfig({
  file,
  env = process.env,
  overrides = {},
  cwd = process.cwd(),
  secrets = true,
}: LoadOptions = {}): Promise<Readonly<Config>> {
  const path = resolve(cwd, file ?? "portcullis.yaml");
  let raw: unknown = {};
  try {
    raw = parseYaml(await readFile(path, "utf8")) ?? {};
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
    if (!(missing && file === undefined)) {
      throw new ConfigError(
        missing ? `config file ${path} does not exist` : `cannot read config file ${path}: ${(error as Error).message}`,
      );
    }
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`config file ${path} must hold a YAML mapping of keys`);
  }
  const merged = structuredClone(raw) as Record<string, unknown>;
  const unknownVariables: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith("PORTCULLIS_") || value === undefined || notConfigVariables.has(key)) continue;
    const keyPath = envKeyPath(key);
    if (keyPath) setPath(merged, keyPath, parseYaml(value));
    else unknownVariables.push(key);
  }
  if (unknownVariables.length > 0) {
    throw new ConfigError(
      `${unknownVariables.join(", ")} (beside ${path}): no config key of that name (PORTCULLIS_TLS_RENEW_BEFORE_DAYS sets ` +
        "tls.renewBeforeDays; `portcullis config schema` lists every key): unset it, or fix the spelling",
    );
  }
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) merged[key] = value;

  const result = configSchema.safeParse(merged);
  if (!result.success) throw new ConfigError(describeIssues(result.error.issues, path));
  const passwordEnv = result.data.auth.ldap?.bindPasswordEnv;
  if (secrets && passwordEnv !== undefined && !env[passwordEnv])
    throw new ConfigError(
      `invalid configuration (${path}):\n  auth.ldap.bindPasswordEnv: names ${passwordEnv}, but that environment variable is not set or empty`,
    );
  const base = dirname(path);
  const config = result.data;
  const fromFile = (value: string) => resolve(base, value);
  const fromFlagOrFile = (key: "data" | "certs") =>
    key in overrides ? resolve(cwd, config[key]) : fromFile(config[key]);
  const { tls, auth } = config;
  return deepFreeze({
    ...config,
    data: fromFlagOrFile("data"),
    certs: fromFlagOrFile("certs"),
    tls: {
      ...tls,
      ca: tls.ca && { ...tls.ca, cert: fromFile(tls.ca.cert), key: fromFile(tls.ca.key) },
      server: tls.server && {
        ...tls.server,
        cert: fromFile(tls.server.cert),
        key: fromFile(tls.server.key),
        chain: tls.server.chain && fromFile(tls.server.chain),
      },
    },
    auth: {
      ...auth,
      htpasswd: { file: auth.htpasswd.file && fromFile(auth.htpasswd.file) },
      ldap: auth.ldap && { ...auth.ldap, caFile: auth.ldap.caFile && fromFile(auth.ldap.caFile) },
    },
  });
}

/** PORTCULLIS_* variables that are not config keys: the credentials `--server` commands sign in with. */
const notConfigVariables = new Set(["PORTCULLIS_USERNAME", "PORTCULLIS_PASSWORD"]);

/** `PORTCULLIS_TLS_RENEW_BEFORE_DAYS` → `["tls", "renewBeforeDays"]`, matched against the schema's own keys. */
function envKeyPath(variable: string): string[] | undefined {
  const words = variable.slice("PORTCULLIS_".length).toLowerCase().split("_");
  const walk = (shape: Record<string, unknown>, rest: string[]): string[] | undefined => {
    for (const key of Object.keys(shape)) {
      const keyWords = key
        .replace(/([A-Z])/g, "_$1")
        .toLowerCase()
        .split("_");
      if (keyWords.every((word, i) => rest[i] === word)) {
        const remaining = rest.slice(keyWords.length);
        if (remaining.length === 0) return [key];
        const inner = objectShape(shape[key]);
        const deeper = inner && walk(inner, remaining);
        if (deeper) return [key, ...deeper];
      }
    }
    return undefined;
  };
  return walk(configObjectSchema.shape, words);
}

/** The keys of an object schema, seen through `.default()` and `.optional()` wrappers (zod's public API). */
function objectShape(schema: unknown): Record<string, unknown> | undefined {
  let current = schema;
  for (;;) {
    if (current instanceof ZodDefault) current = current.removeDefault();
    else if (current instanceof ZodOptional) current = current.unwrap();
    else return current instanceof ZodObject ? (current.shape as Record<string, unknown>) : undefined;
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

/** A key as the messages name it everywhere: `policies[0].clientIp`. */
export function keyName(path: readonly (string | number)[]): string {
  return path.map((part, i) => (typeof part === "number" ? `[${part}]` : i === 0 ? part : `.${part}`)).join("");
}

function describeIssues(issues: ZodIssue[], path: string): string {
  const lines = issues.map((issue) => {
    const key = keyName(issue.path) || "(top level)";
    if (issue.code === "unrecognized_keys") {
      const where = issue.path.length ? `${keyName(issue.path)}.` : "";
      return `  ${issue.keys.map((k) => where + k).join(", ")}: unknown key (check the spelling; see the README for every key)`;
    }
    return `  ${key}: ${issue.message}`;
  });
  return `invalid configuration (${path} and PORTCULLIS_* variables):\n${lines.join("\n")}`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
