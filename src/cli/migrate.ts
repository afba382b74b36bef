import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { ensureFirstUser, htpasswdPath } from "../auth/from-config.js";
import {
  HtpasswdError,
  parseHtpasswd,
  readHtpasswd,
  writeHtpasswd,
  type HtpasswdEntry,
} from "../auth/authn/htpasswd-file.js";
import { bootstrapCommand } from "../gateway/install-script.js";
import { parseHostPort } from "../http/listen-address.js";
import { ensureTlsMaterial } from "../pki/tls-material.js";
import { hasSwitch, parseArgs, stringFlag } from "./args.js";
import { registryName } from "./banner.js";
import { writeNewConfig } from "./config-args.js";
import { UsageError } from "./errors.js";

/** What matters of a registry:2 installation, from its config file or from flags. */
export interface RegistryTwo {
  root: string;
  htpasswd?: string;
  /** `http.addr`: `:5000`, `0.0.0.0:5000`, `127.0.0.1:5000`. */
  addr: string;
  tls?: { certificate: string; key: string };
  deleteEnabled: boolean;
  /** What registry:2 did that Portcullis does another way, or not at all: said, never silently dropped. */
  notes: string[];
}

/** registry:2 serves this root when its config names none (the image's default). */
const defaultRoot = "/var/lib/registry";

/**
 * `portcullis migrate`: takes over a registry:2 installation. The storage root is served where it is (the
 * layout is the same, nothing is copied), the htpasswd users are imported with their bcrypt hashes as they
 * are, the port stays, and TLS keeps the old certificate when there was one. It writes the config, creates
 * what serve needs, and says what changes for clients.
 */
export async function runMigrate(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, ["from", "root", "htpasswd", "listen", "out", "config", "certs", "data"], ["force"]);
  if (args.positionals.length > 0) throw new UsageError(`migrate takes no arguments (got "${args.positionals[0]}")`);
  const from = stringFlag(args, "from");
  const old = from ? await readRegistryConfig(resolve(from)) : registryFromFlags(args);
  const out = resolve(stringFlag(args, "out") ?? stringFlag(args, "config") ?? "portcullis.yaml");
  if (existsSync(out) && !hasSwitch(args, "force"))
    throw new UsageError(`${out} exists already: pass --out FILE for another, or --force to write over it`);
  if (!existsSync(old.root))
    throw new UsageError(`the registry:2 storage root ${old.root} does not exist: pass --root DIR (its rootdirectory)`);
  const listen = stringFlag(args, "listen") ?? listenFromAddr(old.addr);
  try {
    parseHostPort(listen);
  } catch (error) {
    throw new UsageError(`--listen: ${(error as Error).message}`);
  }
  const imported = old.htpasswd ? await importableUsers(old.htpasswd) : { users: [], skipped: [] };
  const certs = resolve(stringFlag(args, "certs") ?? resolve(dirname(out), "certs"));

  const config = await writeNewConfig(out, migratedConfigText(old, { listen, certs, anonymousPull: !old.htpasswd }));
  const file = htpasswdPath(config);
  const users = await readHtpasswd(file);
  const added = imported.users.filter((entry) => !users.has(entry.user));
  for (const entry of added) users.set(entry.user, entry);
  if (added.length > 0) await writeHtpasswd(file, users.values());
  const material = await ensureTlsMaterial({ config });
  const firstUser = await ensureFirstUser(config, ["--config", out]);
  const port = parseHostPort(config.listen).port;
  const busy = await portInUse(parseHostPort(config.listen).host, port);

  const names = material.names.filter((n) => n !== "localhost" && !n.startsWith("127.") && n !== "::1");
  const lines = [
    `wrote ${out}: it serves ${old.root} in place (registry:2's layout; nothing was copied)`,
    ...material.actions,
    ...(added.length
      ? [`imported ${added.length} users from ${old.htpasswd} into ${file}: ${added.map((u) => u.user).join(", ")}`]
      : []),
    ...imported.skipped.map((reason) => `not imported: ${reason}`),
    ...(firstUser ? [firstUser] : []),
    ...old.notes.map((note) => `note: ${note}`),
    "",
    "What changes for clients:",
    `  - image names stay the same: ${registryName(names[0] ?? "HOST", port)}/NAME:TAG`,
    old.tls
      ? "  - TLS keeps registry:2's certificate (tls.server), so clients that trusted it trust Portcullis"
      : "  - registry:2 spoke plain HTTP; Portcullis speaks HTTPS only. On each client, trust the CA once:",
    ...(old.tls || !material.caCertPem
      ? []
      : names
          .slice(0, 3)
          .map((name) => `      ${bootstrapCommand(material.caCertPem as string, registryName(name, port))}`)),
    ...(old.tls ? [] : ["    then remove this registry from insecure-registries (daemon.json) or registries.conf"]),
    old.htpasswd
      ? "  - the same users sign in with the same passwords (docker login keeps working)"
      : "  - registry:2 had no sign-in: pulls stay anonymous, pushes now need `docker login`",
    "",
    "Next:",
    busy
      ? `  1. port ${port} is in use (registry:2 still running?): stop it (systemctl stop docker-registry, or docker stop CONTAINER)`
      : `  1. registry:2 must stay stopped: both would write to ${old.root}`,
    `  2. portcullis serve --config ${out}`,
    "  3. to move back: stop Portcullis and start registry:2 with its old config; the storage is still its own",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** Reads the parts of a registry:2 `config.yml` Portcullis can carry over, and notes those it cannot. */
export async function readRegistryConfig(path: string): Promise<RegistryTwo> {
  let doc: Record<string, unknown>;
  try {
    doc = (parseYaml(await readFile(path, "utf8")) ?? {}) as Record<string, unknown>;
  } catch (error) {
    throw new UsageError(`cannot read the registry:2 config ${path}: ${(error as Error).message}`);
  }
  const get = (...keys: string[]): unknown =>
    keys.reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], doc);
  const storage = (get("storage") ?? {}) as Record<string, unknown>;
  const driver = Object.keys(storage).find((k) => !["delete", "cache", "maintenance", "redirect", "tag"].includes(k));
  if (driver && driver !== "filesystem")
    throw new UsageError(
      `${path}: storage.${driver} is not a filesystem root; Portcullis migrates filesystem storage only`,
    );
  const notes: string[] = [];
  const auth = (get("auth") ?? {}) as Record<string, unknown>;
  for (const kind of Object.keys(auth).filter((k) => k !== "htpasswd"))
    notes.push(`auth.${kind} is not carried over: users come from htpasswd or auth.ldap in portcullis.yaml`);
  if (get("http", "prefix")) notes.push("http.prefix is not supported: Portcullis serves the API at /v2/");
  if (get("proxy", "remoteurl")) notes.push("proxy.remoteurl (a pull-through cache) is not carried over");
  if (get("notifications")) notes.push("notifications are not carried over: the audit log records every act");
  const tlsCert = get("http", "tls", "certificate");
  const tlsKey = get("http", "tls", "key");
  const fromConfig = (value: unknown) => resolve(dirname(path), String(value));
  return {
    root: fromConfig(get("storage", "filesystem", "rootdirectory") ?? defaultRoot),
    htpasswd: get("auth", "htpasswd", "path") ? fromConfig(get("auth", "htpasswd", "path")) : undefined,
    addr: String(get("http", "addr") ?? ":5000"),
    tls: tlsCert && tlsKey ? { certificate: fromConfig(tlsCert), key: fromConfig(tlsKey) } : undefined,
    deleteEnabled: get("storage", "delete", "enabled") === true,
    notes,
  };
}

function registryFromFlags(args: ReturnType<typeof parseArgs>): RegistryTwo {
  const root = stringFlag(args, "root");
  if (!root) throw new UsageError("migrate needs --from CONFIG.yml, or --root DIR (the registry:2 storage root)");
  const htpasswd = stringFlag(args, "htpasswd");
  return {
    root: resolve(root),
    htpasswd: htpasswd ? resolve(htpasswd) : undefined,
    addr: ":5000",
    deleteEnabled: false,
    notes: [],
  };
}

/** registry:2's `:5000` is every address, as Portcullis's `0.0.0.0:5000`. */
function listenFromAddr(addr: string): string {
  return addr.startsWith(":") ? `0.0.0.0${addr}` : addr;
}

/**
 * The users of a registry:2 htpasswd file, bcrypt hashes as they are (`htpasswd -B` writes `$2y$`, which
 * Portcullis reads). Other hashes registry:2 could not check either, so they are reported, not imported.
 */
async function importableUsers(path: string): Promise<{ users: HtpasswdEntry[]; skipped: string[] }> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read the htpasswd file ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  const users: HtpasswdEntry[] = [];
  const skipped: string[] = [];
  for (const [index, line] of text.split("\n").entries()) {
    const where = `${path} line ${index + 1}`;
    try {
      users.push(...parseHtpasswd(line, where).values());
    } catch (error) {
      if (!(error instanceof HtpasswdError)) throw error;
      // The parser numbers the one line it was given 1, after the label.
      skipped.push(where + error.message.slice(`${where} line 1`.length));
    }
  }
  return { users, skipped };
}

function portInUse(host: string, port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) => resolvePort(error.code === "EADDRINUSE"));
    probe.listen(port, host, () => probe.close(() => resolvePort(false)));
  });
}

/** The config `migrate` writes: registry:2's behaviour, key by key, with what each line keeps. */
export function migratedConfigText(
  old: RegistryTwo,
  options: { listen: string; certs: string; anonymousPull: boolean },
): string {
  const actions = old.deleteEnabled ? "[pull, push, delete]" : "[pull, push]";
  const tls = old.tls
    ? `tls:
  # registry:2's own certificate, used as it is: clients that trusted it change nothing.
  server: { cert: ${JSON.stringify(old.tls.certificate)}, key: ${JSON.stringify(old.tls.key)} }
`
    : "";
  const anonymous = options.anonymousPull
    ? `auth:
  # registry:2 had no sign-in: pulls stay open, pushes need a user (portcullis user add NAME).
  anonymous: true
`
    : "";
  return `# Written by \`portcullis migrate\` from a registry:2 installation. \`portcullis config verify\` checks it.
# Moving back: stop Portcullis and start registry:2 with its old config; this storage root stays its own.

# The address registry:2 listened on, so image names HOST:PORT/NAME keep working.
listen: ${options.listen}
# registry:2's storage root, served in place (the same layout; nothing was copied).
data: ${JSON.stringify(old.root)}
# The CA, keys and the imported htpasswd users: back this up.
certs: ${JSON.stringify(options.certs)}
${tls}${anonymous}
# registry:2 let every signed-in user do everything${old.deleteEnabled ? " (deletes were enabled)" : ""}; so does this, until you narrow it.
policies:
${options.anonymousPull ? '  - { anonymous: true, repository: "*", actions: [pull] }\n' : ""}  - { account: "*", repository: "*", actions: ${actions} }
`;
}
