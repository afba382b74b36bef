import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { ensureFirstUser } from "../auth/from-config.js";
import { checkHostName } from "../config/names.js";
import { bootstrapCommand } from "../gateway/install-script.js";
import { parseHostPort } from "../http/listen-address.js";
import { machineNames } from "../pki/host-names.js";
import { ensureTlsMaterial } from "../pki/tls-material.js";
import { hasSwitch, listFlag, parseArgs, stringFlag } from "./args.js";
import { registryName } from "./banner.js";
import { writeNewConfig } from "./config-args.js";
import { UsageError } from "./errors.js";

/** What `init` asks, or takes from flags. */
export interface InitAnswers {
  names: string[];
  listen: string;
  data: string;
  certs: string;
  users: "htpasswd" | "ldap";
  ldapUrl?: string;
  ldapUserBase?: string;
}

/**
 * `portcullis init`: asks (or takes from flags) the names clients use, where to listen and store, and where
 * users come from; writes a commented config, creates the CA, the server certificate and the first admin,
 * and prints the next steps. Nothing is written until every answer has been checked.
 */
export async function runInit(argv: readonly string[]): Promise<void> {
  const args = parseArgs(
    argv,
    ["config", "data", "certs", "name", "listen", "users", "ldap-url", "ldap-user-base"],
    ["yes", "force"],
  );
  if (args.positionals.length > 0) throw new UsageError(`init takes no arguments (got "${args.positionals[0]}")`);
  const configPath = resolve(stringFlag(args, "config") ?? "portcullis.yaml");
  if (existsSync(configPath) && !hasSwitch(args, "force"))
    throw new UsageError(`${configPath} exists already: edit it, or pass --force to write a new one over it`);

  const given: InitAnswers = {
    names: listFlag(args, "name"),
    listen: stringFlag(args, "listen") ?? "0.0.0.0:5000",
    data: resolve(stringFlag(args, "data") ?? resolve(dirname(configPath), "data")),
    certs: resolve(stringFlag(args, "certs") ?? resolve(dirname(configPath), "certs")),
    users: (stringFlag(args, "users") ?? "htpasswd") as InitAnswers["users"],
    ldapUrl: stringFlag(args, "ldap-url"),
    ldapUserBase: stringFlag(args, "ldap-user-base"),
  };
  const interactive = process.stdin.isTTY && !hasSwitch(args, "yes");
  const answers = checkAnswers(interactive ? await ask(given) : given);

  const config = await writeNewConfig(configPath, configText(answers));
  const material = await ensureTlsMaterial({ config });
  const hint = ["--config", configPath];
  const firstUser = await ensureFirstUser(config, hint);
  const port = parseHostPort(config.listen).port;
  const shown = answers.names.length
    ? answers.names
    : material.names.filter((n) => n !== "localhost" && !n.includes(":"));
  const lines = [
    `wrote ${configPath}`,
    ...material.actions,
    ...(firstUser
      ? [firstUser]
      : [`users come from ${answers.ldapUrl}: members of the LDAP group "admins" may delete`]),
    "",
    "Next steps:",
    `  1. start it:            portcullis serve --config ${configPath}   (or install contrib/portcullis.service)`,
    `  2. check it:            portcullis doctor --config ${configPath}`,
    "  3. on each client, trust the CA (the checksum guards the download):",
    ...shown
      .slice(0, 3)
      .map((name) => `       ${bootstrapCommand(material.caCertPem as string, registryName(name, port))}`),
    `  4. sign in and push:    docker login ${registryName(shown[0] ?? "localhost", port)}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

function checkAnswers(answers: InitAnswers): InitAnswers {
  for (const name of answers.names) {
    const problem = checkHostName(name);
    if (problem) throw new UsageError(`--name ${JSON.stringify(name)}: ${problem}`);
  }
  try {
    parseHostPort(answers.listen);
  } catch (error) {
    throw new UsageError(`--listen: ${(error as Error).message}`);
  }
  if (answers.users !== "htpasswd" && answers.users !== "ldap")
    throw new UsageError(`--users takes htpasswd or ldap, not ${JSON.stringify(answers.users)}`);
  if (answers.users === "ldap" && (!answers.ldapUrl || !answers.ldapUserBase))
    throw new UsageError("--users ldap needs --ldap-url ldaps://HOST and --ldap-user-base DN");
  return answers;
}

async function ask(defaults: InitAnswers): Promise<InitAnswers> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const question = async (text: string, fallback: string) =>
    (await rl.question(`${text} [${fallback}]: `)).trim() || fallback;
  try {
    process.stderr.write(`This machine's own names and addresses are always covered: ${machineNames().join(", ")}\n`);
    const names = await question(
      "Other names or addresses clients use (comma-separated)",
      defaults.names.join(",") || "none",
    );
    const listen = await question("Listen on", defaults.listen);
    const data = await question("Store images in", defaults.data);
    const certs = await question("Keep the CA, keys and users in", defaults.certs);
    const users = await question("Users from (htpasswd or ldap)", defaults.users);
    const ldap =
      users === "ldap"
        ? {
            ldapUrl: await question("LDAP URL", defaults.ldapUrl ?? "ldaps://ldap.example.com"),
            ldapUserBase: await question("LDAP user base", defaults.ldapUserBase ?? "ou=people,dc=example,dc=com"),
          }
        : {};
    return {
      names:
        names === "none"
          ? []
          : names
              .split(",")
              .map((n) => n.trim())
              .filter(Boolean),
      listen,
      data: resolve(data),
      certs: resolve(certs),
      users: users as InitAnswers["users"],
      ...ldap,
    };
  } finally {
    rl.close();
  }
}

/** The config `init` writes: only what was answered, each key with a line on what it does. */
export function configText(answers: InitAnswers): string {
  const list = (items: readonly string[]) => `[${items.map((item) => JSON.stringify(item)).join(", ")}]`;
  const users =
    answers.users === "ldap"
      ? `  # Users and their groups come from the directory; htpasswd users (portcullis user add) work beside them.
  ldap:
    url: ${answers.ldapUrl}
    userBase: ${JSON.stringify(answers.ldapUserBase)}
    userFilter: "(uid={username})"
    groupAttribute: memberOf
    # A service account to search with (anonymous search without it):
    # bindDn: cn=registry,ou=services,dc=example,dc=com
    # bindPasswordEnv: LDAP_BIND_PASSWORD`
      : `  # Groups of htpasswd users (portcullis user add NAME); admin is the first user, created now.
  groups:
    admins: [admin]`;
  return `# Portcullis configuration, written by \`portcullis init\`.
# The README's "Configuration" section lists every key; \`portcullis config verify\` checks this file and
# \`portcullis doctor\` the whole set-up. Any key can also be set by a PORTCULLIS_* environment variable.

# Where HTTPS is served. Clients name images HOST:PORT/repository (port 443 can be left out).
listen: ${answers.listen}
# Storage root, in registry:2's layout (an existing /var/lib/registry can be served as it is).
data: ${JSON.stringify(answers.data)}
# The CA, server certificate, token-signing keys, refresh-token secret and htpasswd file: back it up.
certs: ${JSON.stringify(answers.certs)}

tls:
  # Names and addresses clients use, beside this machine's own (always covered).
  names: ${list(answers.names)}

auth:
  # Members of this group may delete under the default policy.
  adminGroup: admins
${users}

# Who may do what; the first matching rule decides. Without a list: signed-in users pull and push
# everywhere, members of adminGroup also delete, callers without credentials get nothing.
# policies:
#   - { group: admins, repository: "*", actions: ["*"] }
#   - { account: "*", repository: "users/\${account}/*", actions: [pull, push, delete] }
#   - { account: "*", repository: "*", actions: [pull] }
`;
}
