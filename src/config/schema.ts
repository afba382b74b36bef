import { FilterParser } from "ldapts";
import { z } from "zod";
import { createAddressList } from "../http/address-list.js";
import { parseHostPort } from "../http/listen-address.js";
import { checkHostName } from "./names.js";

/**
 * The one schema for `portcullis.yaml`: every key, its default, its form and what it is for (the
 * descriptions are the README's config reference and `portcullis config schema`). Unknown keys are errors
 * at every depth, and every check that can be made before anything is created is made here, so a mistake
 * stops the start with the key's name instead of failing later.
 */

const custom = (check: (text: string) => string | undefined) =>
  z.string().superRefine((text, ctx) => {
    const problem = check(text);
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  });

const failure = (fn: () => unknown) => {
  try {
    fn();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
};

const hostPort = custom((text) => failure(() => parseHostPort(text)));
const addressOrCidr = custom((text) =>
  failure(() => createAddressList([text], "x"))?.replace(/^x: /, "expected an IP address or CIDR (10.0.0.0/8): "),
);
const hostName = custom((text) => checkHostName(text));
const ldapFilter = (placeholder: string, values: Record<string, string>) =>
  custom((text) => {
    if (!text.includes(placeholder)) return `must contain ${placeholder}`;
    let filled = text;
    for (const [key, value] of Object.entries(values)) filled = filled.replaceAll(`{${key}}`, value);
    return failure(() => FilterParser.parseString(filled))?.replace(/^/, "not an LDAP filter (RFC 4515): ");
  });
const httpUrl = (schemes: readonly string[], rest = "") =>
  custom((text) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return `expected a URL such as ${schemes[0]}://HOST:PORT`;
    }
    if (!schemes.includes(url.protocol.replace(/:$/, "")))
      return `expected ${schemes.map((s) => `${s}://`).join(" or ")}${rest}, not ${url.protocol}//`;
    if (url.pathname !== "/" || url.search || url.hash) return "expected the URL of the host alone, without a path";
    return undefined;
  });

const upstreamNamePattern = /^[a-z0-9][a-z0-9._-]*$/;
const upstreamName = z
  .string()
  .regex(upstreamNamePattern, "expected a name of lower-case letters, digits, `.`, `_` and `-`, such as hub");

const upstreamUrl = httpUrl(["http", "https"]);
const upstreamUrlOrName = custom((text) => {
  if (text.includes("://")) {
    const result = upstreamUrl.safeParse(text);
    return result.success ? undefined : result.error.issues[0]?.message;
  }
  return upstreamNamePattern.test(text)
    ? undefined
    : "expected a URL such as http://HOST:PORT, or the name of an entry of upstreams";
});

export const upstreamEntrySchema = z
  .object({
    url: upstreamUrl.describe("The registry's address: https://HOST[:PORT] (or http:// on a trusted network)."),
    username: z
      .string()
      .min(1)
      .optional()
      .describe(
        "The gateway's own account on the upstream; Basic or token auth is what the upstream's `/v2/` challenge asks for.",
      ),
    password: z.string().min(1).optional().describe("Its password (or use passwordFile)."),
    passwordFile: z
      .string()
      .min(1)
      .optional()
      .describe("A file holding the password (the first line), instead of password."),
    ca: z
      .string()
      .min(1)
      .optional()
      .describe("PEM bundle trusted for the upstream and its token service, instead of the system's CAs."),
    connectTimeoutMs: z
      .number()
      .int()
      .min(100)
      .max(600_000)
      .default(10_000)
      .describe("Bound on connecting (TLS included), and on the first byte of an answer once a request is sent."),
    idleTimeoutMs: z
      .number()
      .int()
      .min(1000)
      .max(3_600_000)
      .default(300_000)
      .describe("A connection that sends and receives nothing for this long mid-request is given up."),
  })
  .strict()
  .superRefine((upstream, ctx) => {
    const issue = (path: string, message: string) =>
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: [path], message });
    if (upstream.password !== undefined && upstream.passwordFile !== undefined)
      issue("passwordFile", "set password or passwordFile, not both");
    const hasPassword = upstream.password !== undefined || upstream.passwordFile !== undefined;
    if (upstream.username !== undefined && !hasPassword)
      issue("password", "username needs a password: set password or passwordFile");
    if (upstream.username === undefined && hasPassword)
      issue("username", "a password is set, but there is no username to sign in as");
    if (upstream.ca !== undefined && upstream.url.startsWith("http:"))
      issue("ca", "set for a plain http:// URL, where no certificate is checked");
  });

const ldapSchema = z
  .object({
    url: z
      .string()
      .regex(/^ldaps?:\/\/[^\s/]+\/?$/, "expected ldap://HOST[:PORT] or ldaps://HOST[:PORT]")
      .describe("The directory: ldap://HOST:389 or ldaps://HOST:636."),
    bindDn: z
      .string()
      .min(1)
      .optional()
      .describe("Service account that searches for users; anonymous search when absent."),
    bindPasswordEnv: z
      .string()
      .min(1)
      .optional()
      .describe("Name of the environment variable holding the service account's password."),
    userBase: z.string().min(1).describe("Where users are searched (the whole subtree)."),
    userFilter: ldapFilter("{username}", { username: "probe" })
      .default("(uid={username})")
      .describe("`{username}` is replaced by the escaped user name (RFC 4515)."),
    usernameAttribute: z
      .string()
      .min(1)
      .default("uid")
      .describe("Attribute holding the name as the directory spells it (`sAMAccountName` on Active Directory)."),
    groupAttribute: z
      .string()
      .min(1)
      .optional()
      .describe("Attribute of the user entry listing group DNs, e.g. `memberOf`."),
    groupSearch: z
      .object({
        base: z.string().min(1).describe("Where groups are searched."),
        filter: ldapFilter("{dn}", { dn: "cn=probe", username: "probe" })
          .default("(member={dn})")
          .describe("`{dn}` is the user's DN, `{username}` the name."),
        nameAttribute: z.string().min(1).default("cn").describe("The group entry's attribute that names it."),
      })
      .strict()
      .optional()
      .describe("Groups found by a search, instead of (not beside) groupAttribute."),
    startTls: z.boolean().default(false).describe("Upgrade an ldap:// connection with StartTLS before any bind."),
    caFile: z
      .string()
      .min(1)
      .optional()
      .describe("PEM CA that issued the directory's certificate (ldaps:// and StartTLS); the system's when absent."),
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(120_000)
      .default(5000)
      .describe("Bound on one sign-in or lookup, connect to last search."),
  })
  .strict()
  .superRefine((ldap, ctx) => {
    const issue = (path: string, message: string) =>
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: [path], message });
    const secure = ldap.url.startsWith("ldaps:");
    if (secure && ldap.startTls)
      issue("startTls", "StartTLS upgrades a plain ldap:// connection; an ldaps:// URL is already TLS");
    if (!secure && !ldap.startTls && ldap.caFile !== undefined)
      issue("caFile", "set for a plain ldap:// URL without startTls, where nothing would be encrypted");
    if (ldap.bindDn !== undefined && ldap.bindPasswordEnv === undefined)
      issue("bindPasswordEnv", "bindDn needs a password: name the environment variable holding it");
    if (ldap.bindDn === undefined && ldap.bindPasswordEnv !== undefined)
      issue("bindDn", "bindPasswordEnv is set, but there is no bindDn to sign in as");
    if (ldap.groupAttribute !== undefined && ldap.groupSearch !== undefined)
      issue("groupSearch", "set groupAttribute or groupSearch, not both");
  });

const policyRuleSchema = z
  .object({
    account: z.string().min(1).optional().describe("Glob over the account name; signed-in callers only."),
    group: z.string().min(1).optional().describe("A group the caller belongs to (auth.groups, or LDAP)."),
    anonymous: z.boolean().optional().describe("`true`: a rule for callers without credentials, and only them."),
    repository: z.string().min(1).describe("Glob over the repository name; `${account}` is the caller's name."),
    clientIp: addressOrCidr.optional().describe("Address or CIDR the request must come from."),
    actions: z
      .array(z.enum(["pull", "push", "delete", "*"]))
      .min(1)
      .describe("What the rule allows: pull, push, delete, or `*`."),
  })
  .strict();

const authSchema = z
  .object({
    service: z
      .string()
      .min(1)
      .default("portcullis")
      .describe("The `service` of challenges and the tokens' audience; a registry verifying our tokens uses it too."),
    issuer: z.string().min(1).default("portcullis").describe("The tokens' `iss`."),
    tokenTtlSeconds: z.number().int().min(60).max(86_400).default(300).describe("Lifetime of an access token."),
    refreshTokenDays: z
      .number()
      .int()
      .min(1)
      .max(3650)
      .default(90)
      .describe("Lifetime of the refresh token `docker login` keeps."),
    signingAlgorithm: z.enum(["ES256", "RS256"]).default("ES256").describe("How tokens are signed."),
    libtrustKeyId: z
      .boolean()
      .default(false)
      .describe("Put libtrust's key ID in `kid`, for registry 2.x set up without x5c; registry 3 does not know it."),
    anonymous: z
      .boolean()
      .default(false)
      .describe("Let callers without credentials get tokens (the policies still decide what they may do)."),
    adminGroup: z.string().min(1).default("admins").describe("Members may delete everywhere under the default policy."),
    groups: z
      .record(z.string(), z.array(z.string().min(1)))
      .default({ admins: ["admin"] })
      .describe("Groups of htpasswd users by name: `{ admins: [admin, alice] }`."),
    credentialCacheSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(60)
      .describe("How long a verified user+password pair is remembered, so a push costs one bcrypt."),
    htpasswd: z
      .object({
        file: z
          .string()
          .min(1)
          .optional()
          .describe(
            "The htpasswd file (bcrypt: `$2a$`, `$2b$`, `$2y$`); `htpasswd` in the certs directory when absent.",
          ),
      })
      .strict()
      .default({}),
    ldap: ldapSchema.optional().describe("Users (and their groups) from an LDAP directory, beside htpasswd users."),
  })
  .strict();

const windowSchema = (points: number, durationSeconds: number, what: string) =>
  z
    .object({
      points: z.number().int().min(1).describe("How many in one window."),
      durationSeconds: z.number().int().min(1).describe("The window."),
    })
    .strict()
    .default({ points, durationSeconds })
    .describe(what);

const lockoutSchema = (points: number, durationSeconds: number, blockSeconds: number, what: string) =>
  z
    .object({
      points: z.number().int().min(1).describe("Wrong passwords that lock out."),
      durationSeconds: z.number().int().min(1).describe("The window they are counted in."),
      blockSeconds: z
        .number()
        .int()
        .min(1)
        .describe("The first block; each further lockout of the same key doubles it, up to a day."),
    })
    .strict()
    .default({ points, durationSeconds, blockSeconds })
    .describe(what);

const rateLimitSchema = z
  .object({
    loginFailuresPerAccountAndIp: lockoutSchema(
      10,
      900,
      300,
      "Wrong passwords for one account from one address: the lockout a guesser meets first.",
    ),
    loginFailuresPerAccount: lockoutSchema(
      50,
      900,
      900,
      "Wrong passwords for one account from anywhere (a guesser spread over many addresses).",
    ),
    loginFailuresPerIp: lockoutSchema(100, 900, 900, "Wrong passwords from one address, whatever the account."),
    tokenRequestsPerIp: windowSchema(600, 60, "Token requests from one address."),
    requestsPerAccount: windowSchema(
      100_000,
      60,
      "`/v2/` requests of one account: a brake on a runaway client, above what one busy CI account sends.",
    ),
  })
  .strict();

const gcSchema = z
  .object({
    intervalMinutes: z
      .number()
      .min(0)
      .default(0)
      .describe("Run garbage collection (and retention) this often, in the first server process; 0 is never."),
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .default(3600)
      .describe("A blob or manifest written more recently than this is never swept."),
    uploadGraceSeconds: z
      .number()
      .int()
      .min(0)
      .default(3600)
      .describe("An upload idle for longer than this is abandoned and swept."),
    untagged: z
      .enum(["keep", "remove"])
      .default("keep")
      .describe("`remove`: manifests no tag reaches (through an index, or as a live referrer) are swept too."),
  })
  .strict();

const retentionRuleSchema = z
  .object({
    repository: z.string().min(1).describe("Glob over the repository name (`*` crosses slashes)."),
    keepNewest: z.number().int().min(0).optional().describe("Keep the newest N tags by push time."),
    keepPulledWithinDays: z.number().min(0).optional().describe("Keep tags pulled within this many days."),
    removeUntagged: z.boolean().default(false).describe("Remove manifests no tag reaches."),
    protect: z.array(z.string().min(1)).default([]).describe('Tag globs never removed, e.g. `["v*", latest]`.'),
  })
  .strict();

const repositoryPrefix = z
  .string()
  .regex(
    /^$|^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*\/$/,
    'expected a repository path ending in "/", such as hub/, or "" for the whole name space',
  );

const mirrorSchema = z
  .object({
    prefix: repositoryPrefix.describe(
      'Repositories under it come from the upstream without it: hub/library/alpine is library/alpine there; "" is every repository (docker\'s registry-mirrors).',
    ),
    upstream: upstreamName.describe("The entry of upstreams the repositories are fetched from."),
    tagTtlSeconds: z
      .number()
      .int()
      .min(0)
      .default(300)
      .describe("How long a cached tag is served before the upstream is asked (a HEAD) whether it moved."),
  })
  .strict();

const groupSchema = z
  .object({
    prefix: repositoryPrefix.describe(
      "Repositories under it are pushed to and pulled from at one address: all/team/app is stored as itself when pushed, and otherwise read from the mirror's cache.",
    ),
    mirror: repositoryPrefix.describe(
      "The prefix of the entry of mirrors whose cache a pull falls through to: with hub/, all/library/alpine is read as hub/library/alpine. A pushed tag of the same name shadows the upstream's.",
    ),
  })
  .strict();

/** The keys of the file, before the checks that span several of them. */
export const configObjectSchema = z
  .object({
    listen: hostPort
      .default("0.0.0.0:5000")
      .describe("Where HTTPS is served; 5000 is the port every registry:2 guide uses."),
    data: z
      .string()
      .min(1)
      .default("data")
      .describe("Storage root of the built-in registry (registry:2's `rootdirectory`), and the audit log."),
    certs: z.string().min(1).default("certs").describe("Home of the CA, server certificate, keys and htpasswd file."),
    workers: z
      .number()
      .int()
      .min(0)
      .max(256)
      .default(0)
      .describe("Server processes sharing the port; 0 is one per core. What they share lives on disk or in Redis."),
    upstream: upstreamUrlOrName
      .optional()
      .describe(
        "Another V2 registry to front instead of the built-in one: a URL (http://127.0.0.1:5001), or the name of an entry of upstreams, whose credentials and CA are then used.",
      ),
    upstreams: z
      .record(upstreamName, upstreamEntrySchema)
      .default({})
      .describe("Remote registries by name, reached with the gateway's own credentials (never the clients')."),
    mirrors: z
      .array(mirrorSchema)
      .default([])
      .describe(
        "Pull-through caches: repositories under a prefix fetched from an upstream once, then served from storage.",
      ),
    groups: z
      .array(groupSchema)
      .default([])
      .describe(
        "One address for push and pull: pushes are stored, pulls read what was pushed first, then a mirror's cache.",
      ),
    publicUrl: httpUrl(["https"], " (clients only speak HTTPS to a registry with a token server)")
      .optional()
      .describe("The URL clients use, when it differs from what they send as Host (a port mapping, a proxy)."),
    trustedProxies: z
      .array(addressOrCidr)
      .default([])
      .describe("Addresses or CIDRs of proxies whose X-Forwarded-Proto/Host/For are believed."),
    tls: z
      .object({
        names: z
          .array(hostName)
          .default([])
          .describe("DNS names and IP addresses for the server certificate, beside the machine's own."),
        serverCertDays: z
          .number()
          .int()
          .min(1)
          .max(825)
          .default(397)
          .describe("Days a generated server certificate is valid."),
        renewBeforeDays: z
          .number()
          .int()
          .min(1)
          .default(30)
          .describe("Renew the server certificate this many days before it expires."),
        ca: z
          .object({
            cert: z.string().min(1).describe("PEM CA certificate."),
            key: z.string().min(1).describe("Its RSA key (PEM)."),
            keyPassphraseEnv: z
              .string()
              .min(1)
              .optional()
              .describe("Name of the environment variable holding the key's passphrase."),
          })
          .strict()
          .optional()
          .describe("An existing CA to sign the server certificate with, instead of generating one."),
        server: z
          .object({
            cert: z.string().min(1).describe("PEM server certificate."),
            key: z.string().min(1).describe("Its key (PEM)."),
            chain: z.string().min(1).optional().describe("The issuing chain (PEM), ending at the CA clients trust."),
          })
          .strict()
          .optional()
          .describe("A server certificate managed elsewhere, used as it is (never renewed here)."),
      })
      .strict()
      .default({}),
    auth: authSchema.default({}),
    policies: z
      .array(policyRuleSchema)
      .optional()
      .describe(
        "Ordered access rules; the first that matches a caller and a repository decides. Absent: the default policy.",
      ),
    rateLimits: rateLimitSchema.default({}),
    gc: gcSchema.default({}).describe("Online garbage collection of the built-in registry's storage."),
    retention: z
      .array(retentionRuleSchema)
      .default([])
      .describe(
        "Which tags to remove, per repository; the first rule whose glob matches applies. A tag is kept when any keep condition holds.",
      ),
    redis: z
      .object({
        url: z
          .string()
          .regex(/^rediss?:\/\/\S+$/, "expected redis://HOST:PORT or rediss://…")
          .describe("redis://HOST:PORT[/DB]"),
      })
      .strict()
      .optional()
      .describe("Shared state for several instances (rate limits); memory when absent."),
    log: z
      .object({
        level: z
          .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
          .default("info")
          .describe("Diagnostic log level (the audit log is apart and always on)."),
      })
      .strict()
      .default({}),
  })
  .strict();

/** The config file's schema: its keys, and the checks between them (rules that can never match, undefined groups). */
export const configSchema = configObjectSchema.superRefine((config, ctx) => {
  if (config.upstream !== undefined && !config.upstream.includes("://") && !(config.upstream in config.upstreams))
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ["upstream"],
      message: `no upstream "${config.upstream}" in upstreams (defined: ${Object.keys(config.upstreams).join(", ") || "none"})`,
    });
  if (config.upstream !== undefined && config.mirrors.length > 0)
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ["mirrors"],
      message: "mirrors are cached in the built-in registry, which `upstream` replaces: remove one of them",
    });
  for (const [index, mirror] of config.mirrors.entries()) {
    if (!(mirror.upstream in config.upstreams))
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["mirrors", index, "upstream"],
        message: `no upstream "${mirror.upstream}" in upstreams (defined: ${Object.keys(config.upstreams).join(", ") || "none"})`,
      });
    if (config.mirrors.findIndex((other) => other.prefix === mirror.prefix) !== index)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["mirrors", index, "prefix"],
        message: `prefix "${mirror.prefix}" is already mirrored by an earlier entry`,
      });
  }
  for (const [index, group] of config.groups.entries()) {
    const issue = (key: string, message: string) =>
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["groups", index, key], message });
    if (!config.mirrors.some((mirror) => mirror.prefix === group.mirror))
      issue(
        "mirror",
        `no entry of mirrors has the prefix "${group.mirror}" (mirrored: ${config.mirrors.map((m) => `"${m.prefix}"`).join(", ") || "none"})`,
      );
    if (config.mirrors.some((mirror) => mirror.prefix === group.prefix))
      issue("prefix", `prefix "${group.prefix}" is a mirror's: a group needs a name space of its own`);
    if (config.groups.findIndex((other) => other.prefix === group.prefix) !== index)
      issue("prefix", `prefix "${group.prefix}" is already a group of an earlier entry`);
  }
  for (const [index, rule] of (config.policies ?? []).entries()) {
    const issue = (key: string, message: string) =>
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ["policies", index, key], message });
    if (rule.anonymous === true && (rule.group !== undefined || rule.account !== undefined))
      issue(
        rule.group !== undefined ? "group" : "account",
        "this rule can never match: anonymous callers have no account and no groups (split it in two rules)",
      );
    if (rule.anonymous === true && !config.auth.anonymous)
      issue("anonymous", "this rule can never match: auth.anonymous is false, so anonymous callers get no token");
    if (rule.anonymous === true && rule.repository.includes("${account}"))
      issue("repository", "this rule can never match: anonymous callers have no ${account}");
    if (rule.group !== undefined && !config.auth.ldap && !(rule.group in config.auth.groups))
      issue(
        "group",
        `no group "${rule.group}" in auth.groups (defined: ${Object.keys(config.auth.groups).join(", ") || "none"})`,
      );
  }
});

export type Config = z.infer<typeof configSchema>;
export type UpstreamEntryConfig = z.infer<typeof upstreamEntrySchema>;
export type MirrorConfig = z.infer<typeof mirrorSchema>;
export type GroupConfig = z.infer<typeof groupSchema>;
export type LdapConfig = z.infer<typeof ldapSchema>;
export type GcConfig = z.infer<typeof gcSchema>;
export type RetentionRuleConfig = z.infer<typeof retentionRuleSchema>;
export type RateLimitConfig = z.infer<typeof rateLimitSchema>;
