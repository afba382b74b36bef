/**
 * Every command of the CLI in one table: what it does, how it is called, its flags and examples (which
 * `--help`, `help COMMAND` and the README show), and the module that runs it, loaded only when used.
 */
export interface Subcommand {
  name: string;
  usage: string;
  summary: string;
  examples: readonly string[];
}

export interface CommandEntry {
  name: string;
  summary: string;
  usage: readonly string[];
  /** `[flag, what it does]`, beside the common `--config`, `--data` and `--certs`. */
  flags: readonly (readonly [string, string])[];
  /** False for the one command that takes none of the common flags (`registry`). */
  commonFlags?: boolean;
  subcommands?: readonly Subcommand[];
  examples: readonly string[];
  run(argv: readonly string[]): Promise<void>;
}

export const commonFlagHelp = [
  ["--config FILE", "the server's config file (default: portcullis.yaml in the working directory, if there)"],
  ["--data DIR", "the server's storage root, which holds the audit log too (default: data)"],
  ["--certs DIR", "the server's CA, certificates, keys and htpasswd file (default: certs)"],
] as const;

export const commands: readonly CommandEntry[] = [
  {
    name: "init",
    summary: "set up a new server: a commented portcullis.yaml, the CA and the first admin",
    usage: ["portcullis init [--name NAME]... [--listen HOST:PORT] [--users htpasswd|ldap] [--yes] [--force]"],
    flags: [
      ["--name NAME", "a DNS name or IP address clients use (repeat it); the machine's own are always covered"],
      ["--listen HOST:PORT", "where the server listens (default 0.0.0.0:5000)"],
      ["--users htpasswd|ldap", "where users come from (default htpasswd)"],
      ["--ldap-url URL", "with --users ldap: ldap://HOST or ldaps://HOST"],
      ["--ldap-user-base DN", "with --users ldap: where users are searched"],
      ["--yes", "ask nothing: take the flags and the defaults (also when stdin is not a terminal)"],
      ["--force", "overwrite an existing config file"],
    ],
    examples: [
      "portcullis init",
      "portcullis init --yes --name registry.example.com --name 10.0.0.5 --data /var/lib/portcullis/data --certs /var/lib/portcullis/certs --config /etc/portcullis/portcullis.yaml",
    ],
    run: async (argv) => (await import("./init.js")).runInit(argv),
  },
  {
    name: "serve",
    summary: "run the HTTPS registry and token gateway",
    usage: ["portcullis serve [--config FILE] [--listen HOST:PORT] [--data DIR] [--certs DIR] [--upstream URL]"],
    flags: [
      ["--listen HOST:PORT", "where to listen (default 0.0.0.0:5000)"],
      [
        "--upstream URL",
        "front another V2 registry instead of the built-in one: a URL, or an entry of upstreams (its account and CA)",
      ],
    ],
    examples: ["portcullis serve", "portcullis serve --config /etc/portcullis/portcullis.yaml"],
    run: async (argv) => (await import("./serve.js")).runServe(argv),
  },
  {
    name: "migrate",
    summary: "take over a registry:2 installation: its storage in place, its htpasswd users as they are",
    usage: [
      "portcullis migrate --from /etc/docker/registry/config.yml [--out FILE]",
      "portcullis migrate --root DIR [--htpasswd FILE] [--listen HOST:PORT] [--out FILE]",
    ],
    flags: [
      ["--from FILE", "the registry:2 config file to read (storage root, htpasswd, address, TLS)"],
      ["--root DIR", "the registry:2 storage root (its rootdirectory), without a config file"],
      ["--htpasswd FILE", "the registry:2 htpasswd file whose users to import"],
      ["--listen HOST:PORT", "where Portcullis will listen (default: the address registry:2 used)"],
      ["--out FILE", "the Portcullis config to write (default: the --config path, or portcullis.yaml)"],
      ["--force", "overwrite an existing config file"],
    ],
    examples: [
      "portcullis migrate --from /etc/docker/registry/config.yml --certs /var/lib/portcullis/certs",
      "portcullis migrate --root /var/lib/registry --htpasswd /auth/htpasswd",
    ],
    run: async (argv) => (await import("./migrate.js")).runMigrate(argv),
  },
  {
    name: "doctor",
    summary: "check this server's set-up and say what to fix: certificate, clock, storage, LDAP, upstream, port",
    usage: ["portcullis doctor [--json]"],
    flags: [["--json", "one JSON object per finding"]],
    examples: ["portcullis doctor", "portcullis doctor --config /etc/portcullis/portcullis.yaml"],
    run: async (argv) => (await import("./doctor.js")).runDoctor(argv),
  },
  {
    name: "config",
    summary: "check a config file, or print the config's JSON Schema",
    usage: ["portcullis config verify [FILE]", "portcullis config schema [--markdown]"],
    flags: [["--markdown", "with schema: the reference table the README holds, instead of JSON Schema"]],
    subcommands: [
      {
        name: "verify",
        usage: "portcullis config verify [FILE]",
        summary:
          "load FILE (or --config, or portcullis.yaml) with the PORTCULLIS_* variables; exit 2 naming each bad key",
        examples: ["portcullis config verify /etc/portcullis/portcullis.yaml"],
      },
      {
        name: "schema",
        usage: "portcullis config schema [--markdown]",
        summary: "the JSON Schema of portcullis.yaml, for editors and CI",
        examples: ["portcullis config schema > portcullis.schema.json"],
      },
    ],
    examples: ["portcullis config verify /etc/portcullis/portcullis.yaml", "portcullis config schema"],
    run: async (argv) => (await import("./config.js")).runConfig(argv),
  },
  {
    name: "registry",
    summary: "run the storage layer alone, with no authentication (loopback or a unix socket only)",
    usage: ["portcullis registry --listen HOST:PORT|unix:PATH --root DIR"],
    flags: [
      ["--listen HOST:PORT|unix:PATH", "a loopback address or a unix socket"],
      ["--root DIR", "the storage root (registry:2's layout)"],
    ],
    commonFlags: false,
    examples: ["portcullis registry --listen 127.0.0.1:5001 --root /var/lib/registry"],
    run: async (argv) => (await import("./registry.js")).runRegistry(argv),
  },
  {
    name: "ca",
    summary: "the CA clients trust and the server certificate",
    usage: ["portcullis ca show | export [--der] [--out FILE] | renew [--name NAME]..."],
    flags: [
      ["--der", "with export: DER instead of PEM"],
      ["--out FILE", "with export: write to FILE instead of stdout"],
      ["--name NAME", "with renew: cover this DNS name or IP address too (repeat it)"],
    ],
    subcommands: [
      {
        name: "show",
        usage: "portcullis ca show",
        summary: "the CA, what the server certificate covers, and the install one-liner for clients",
        examples: ["portcullis ca show --certs /var/lib/portcullis/certs"],
      },
      {
        name: "export",
        usage: "portcullis ca export [--der] [--out FILE]",
        summary: "the CA certificate, PEM (or DER)",
        examples: ["portcullis ca export --out ca.crt", "portcullis ca export --der --out ca.der"],
      },
      {
        name: "renew",
        usage: "portcullis ca renew [--name NAME]...",
        summary: "issue a new server certificate now; a running server picks it up by itself",
        examples: ["portcullis ca renew --name registry.example.com"],
      },
    ],
    examples: ["portcullis ca show", "portcullis ca export --out ca.crt", "portcullis ca renew --name 10.0.0.5"],
    run: async (argv) => (await import("./ca.js")).runCa(argv),
  },
  {
    name: "user",
    summary: "the htpasswd users of this server (passwords from a prompt, or stdin; never arguments)",
    usage: ["portcullis user add|passwd|rm NAME", "portcullis user list [--json]"],
    flags: [["--json", "with list: one JSON object per user"]],
    subcommands: [
      {
        name: "add",
        usage: "portcullis user add NAME",
        summary: "add a user; the password is asked twice, or read from stdin",
        examples: ["portcullis user add alice", "printf '%s\\n' \"$PASSWORD\" | portcullis user add ci-bot"],
      },
      {
        name: "passwd",
        usage: "portcullis user passwd NAME",
        summary: "change a password; the user's refresh tokens stop working",
        examples: ["portcullis user passwd admin"],
      },
      {
        name: "rm",
        usage: "portcullis user rm NAME",
        summary: "remove a user",
        examples: ["portcullis user rm bob"],
      },
      {
        name: "list",
        usage: "portcullis user list [--json]",
        summary: "every user, with the groups auth.groups gives them",
        examples: ["portcullis user list", "portcullis user list --json"],
      },
    ],
    examples: ["portcullis user add alice", "portcullis user list --json"],
    run: async (argv) => (await import("./user.js")).runUser(argv),
  },
  {
    name: "policy",
    summary: "what a user may do to a repository, and which rule decided",
    usage: [
      "portcullis policy check USER REPO [ACTION] [--group G]... [--ip ADDRESS] [--json]   (USER - for anonymous)",
      "portcullis policy check USER REPO [ACTION] --server URL [--ca FILE]",
    ],
    flags: [
      ["--group G", "count the user in group G too (LDAP groups, say)"],
      ["--ip ADDRESS", "the client address to decide for (default 127.0.0.1)"],
      [
        "--server URL",
        "ask the running server, as it has loaded the policy (credentials: PORTCULLIS_USERNAME/PASSWORD)",
      ],
      ["--ca FILE", "with --server: the CA to trust (default: ca.crt in --certs)"],
      ["--json", "the decision as one JSON object"],
    ],
    examples: ["portcullis policy check alice team/app push", "portcullis policy check - library/alpine pull"],
    run: async (argv) => (await import("./policy.js")).runPolicy(argv),
  },
  {
    name: "token",
    summary: "the token-signing keys",
    usage: ["portcullis token rotate"],
    flags: [],
    subcommands: [
      {
        name: "rotate",
        usage: "portcullis token rotate",
        summary: "sign with a new key from now on; the old one verifies until its tokens expire",
        examples: ["portcullis token rotate --certs /var/lib/portcullis/certs"],
      },
    ],
    examples: ["portcullis token rotate"],
    run: async (argv) => (await import("./token.js")).runToken(argv),
  },
  {
    name: "fsck",
    summary: "check the storage root for what a crash or a full disk left behind, and repair what is safe",
    usage: ["portcullis fsck [--repair] [--json]"],
    flags: [
      ["--repair", "remove dangling links and tags, stray temp files, abandoned uploads and damaged blobs"],
      ["--json", "one JSON object per problem"],
    ],
    examples: ["portcullis fsck --data /var/lib/portcullis/data", "portcullis fsck --repair"],
    run: async (argv) => (await import("./fsck.js")).runFsck(argv),
  },
  {
    name: "ls",
    summary: "repositories, or a repository's tags with digest, size, platforms and who pushed them when",
    usage: ["portcullis ls [REPO] [--json]", "portcullis ls [REPO] --server URL [--ca FILE] [--json]"],
    flags: [
      ["--json", "one JSON document: the names, or the images"],
      [
        "--server URL",
        "ask a running server through its API (credentials: PORTCULLIS_USERNAME/PASSWORD or the docker/podman login)",
      ],
      ["--ca FILE", "with --server: the CA to trust (default: ca.crt in --certs, else the system's)"],
    ],
    examples: [
      "portcullis ls",
      "portcullis ls team/app --json",
      "portcullis ls team/app --server https://registry.example.com:5000",
    ],
    run: async (argv) => (await import("./ls.js")).runLs(argv),
  },
  {
    name: "rm",
    summary: "remove a tag, or a manifest with every tag on it (gc reclaims the space)",
    usage: [
      "portcullis rm REPO:TAG [--all-tags]",
      "portcullis rm REPO@DIGEST",
      "portcullis rm REPO:TAG --server URL [--ca FILE]",
    ],
    flags: [
      ["--all-tags", "with REPO:TAG: remove the manifest the tag names and every tag on it"],
      ["--server URL", "delete through a running server's API; the policy's `delete` action decides"],
      ["--ca FILE", "with --server: the CA to trust (default: ca.crt in --certs, else the system's)"],
    ],
    examples: [
      "portcullis rm team/app:old",
      "portcullis rm team/app@sha256:...",
      "portcullis rm team/app:1.2 --all-tags",
    ],
    run: async (argv) => (await import("./rm.js")).runRm(argv),
  },
  {
    name: "gc",
    summary: "apply the retention rules, then collect garbage while the server keeps serving",
    usage: ["portcullis gc [--dry-run] [--json] [--settle SECONDS]"],
    flags: [
      [
        "--dry-run",
        "list what would go (tags with the rule that removes them, manifests, blobs, uploads) and the bytes",
      ],
      ["--json", "the report as one JSON object"],
      ["--settle SECONDS", "how long unreferenced blobs stay marked before this run removes them (default 5)"],
    ],
    examples: ["portcullis gc --dry-run", "portcullis gc", "portcullis gc --json"],
    run: async (argv) => (await import("./gc.js")).runGc(argv),
  },
  {
    name: "audit",
    summary: "who did what: the audit log filtered, and its hash chain verified",
    usage: [
      "portcullis audit [--user U] [--repo R] [--action A] [--since T] [--until T] [--limit N] [--follow] [--json]",
      "portcullis audit verify",
    ],
    flags: [
      ["--user U", "acts by this user"],
      ["--repo R", "acts on this repository"],
      ["--action A", "one of the actions the log records (login, token, push, pull, delete, …)"],
      ["--since T", "from T: 2026-11-24T10:00:00Z, 2026-11-24, or back from now: 30m, 24h, 7d"],
      ["--until T", "up to T (same forms)"],
      ["--limit N", "only the last N matching records"],
      ["--follow", "keep printing records as they are written"],
      ["--json", "one JSON record per line, as stored"],
    ],
    subcommands: [
      {
        name: "verify",
        usage: "portcullis audit verify",
        summary: "walk the hash chain; name the first edited, removed or reordered line",
        examples: ["portcullis audit verify --data /var/lib/portcullis/data"],
      },
    ],
    examples: [
      "portcullis audit --repo team/app --action push",
      "portcullis audit --user alice --since 24h --json",
      "portcullis audit --follow",
      "portcullis audit verify",
    ],
    run: async (argv) => (await import("./audit.js")).runAudit(argv),
  },
];

export function findCommand(name: string): CommandEntry | undefined {
  return commands.find((command) => command.name === name);
}
