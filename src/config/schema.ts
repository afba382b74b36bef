import { z } from "zod";
import { parseHostPort } from "../http/listen-address.js";

const hostPort = z.string().superRefine((text, ctx) => {
  try {
    parseHostPort(text);
  } catch (error) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (error as Error).message });
  }
});

/**
 * The one schema for `portcullis.yaml`: every key, its default and its form. Unknown keys are errors at
 * every depth, so a misspelt key is caught at load instead of silently ignored.
 */
const ldapSchema = z
  .object({
    /** ldap://host:389 or ldaps://host:636 */
    url: z.string().regex(/^ldaps?:\/\/[^\s]+$/, "expected ldap://HOST[:PORT] or ldaps://HOST[:PORT]"),
    /** Service account used to search for users; anonymous search when absent. */
    bindDn: z.string().min(1).optional(),
    /** Name of the environment variable holding the service account's password. */
    bindPasswordEnv: z.string().min(1).optional(),
    userBase: z.string().min(1),
    /** `{username}` is replaced by the escaped user name (RFC 4515). */
    userFilter: z.string().includes("{username}", { message: "must contain {username}" }).default("(uid={username})"),
    /** Attribute holding the user's name as the directory spells it; `ALICE` then signs in as `alice`. */
    usernameAttribute: z.string().min(1).default("uid"),
    /** Attribute of the user entry listing group DNs, e.g. memberOf. */
    groupAttribute: z.string().min(1).optional(),
    groupSearch: z
      .object({
        base: z.string().min(1),
        filter: z.string().includes("{dn}", { message: "must contain {dn}" }).default("(member={dn})"),
        nameAttribute: z.string().min(1).default("cn"),
      })
      .strict()
      .optional(),
    startTls: z.boolean().default(false),
    /** PEM CA that issued the LDAP server's certificate (ldaps:// and StartTLS). */
    caFile: z.string().min(1).optional(),
    timeoutMs: z.number().int().min(100).max(120_000).default(5000),
  })
  .strict();

const policyRuleSchema = z
  .object({
    account: z.string().min(1).optional(),
    group: z.string().min(1).optional(),
    anonymous: z.boolean().optional(),
    repository: z.string().min(1),
    clientIp: z.string().min(1).optional(),
    actions: z.array(z.enum(["pull", "push", "delete", "*"])).min(1),
  })
  .strict();

const authSchema = z
  .object({
    /** The `service` in challenges and the tokens' audience; a registry verifying our tokens is configured with it. */
    service: z.string().min(1).default("portcullis"),
    /** The tokens' `iss`. */
    issuer: z.string().min(1).default("portcullis"),
    tokenTtlSeconds: z.number().int().min(60).max(86_400).default(300),
    refreshTokenDays: z.number().int().min(1).max(3650).default(90),
    signingAlgorithm: z.enum(["ES256", "RS256"]).default("ES256"),
    /** Put libtrust's key ID in `kid` (for registry 2.x set up without x5c support); registry 3 does not know it. */
    libtrustKeyId: z.boolean().default(false),
    /** Let callers without credentials get tokens (the policies still decide what they may do). */
    anonymous: z.boolean().default(false),
    /** Members may delete everywhere under the default policy. */
    adminGroup: z.string().min(1).default("admins"),
    /** Groups of htpasswd users, by name: `{ admins: [admin, alice] }`. */
    groups: z.record(z.string(), z.array(z.string().min(1))).default({ admins: ["admin"] }),
    /** How long a verified user+password pair is remembered, so a push costs one bcrypt. */
    credentialCacheSeconds: z.number().int().min(0).max(3600).default(60),
    htpasswd: z
      .object({ file: z.string().min(1).optional() })
      .strict()
      .default({}),
    ldap: ldapSchema.optional(),
  })
  .strict();

const windowSchema = (points: number, durationSeconds: number) =>
  z
    .object({ points: z.number().int().min(1), durationSeconds: z.number().int().min(1) })
    .strict()
    .default({ points, durationSeconds });

const lockoutSchema = (points: number, durationSeconds: number, blockSeconds: number) =>
  z
    .object({
      points: z.number().int().min(1),
      durationSeconds: z.number().int().min(1),
      /** The first block; each further lockout of the same key doubles it, up to a day. */
      blockSeconds: z.number().int().min(1),
    })
    .strict()
    .default({ points, durationSeconds, blockSeconds });

const rateLimitSchema = z
  .object({
    /** Wrong passwords for one account from one address: the lockout a guesser meets first. */
    loginFailuresPerAccountAndIp: lockoutSchema(10, 900, 300),
    /** Wrong passwords for one account from anywhere (a guesser spread over many addresses). */
    loginFailuresPerAccount: lockoutSchema(50, 900, 900),
    /** Wrong passwords from one address, whatever the account. */
    loginFailuresPerIp: lockoutSchema(100, 900, 900),
    tokenRequestsPerIp: windowSchema(600, 60),
    requestsPerAccount: windowSchema(20_000, 60),
  })
  .strict();

export const configSchema = z
  .object({
    /** Where the HTTPS gateway listens. 5000 is the port every registry:2 guide uses. */
    listen: hostPort.default("0.0.0.0:5000"),
    /** Storage root of the built-in registry (registry:2's `rootdirectory`). */
    data: z.string().min(1).default("data"),
    /** Home of the CA, server certificate and keys. */
    certs: z.string().min(1).default("certs"),
    /** Server processes sharing the listening port; 0 is one per core. State they share lives on disk or in Redis. */
    workers: z.number().int().min(0).max(256).default(0),
    /** Another V2 registry to front instead of the built-in one, e.g. http://127.0.0.1:5001. */
    upstream: z.string().url().optional(),
    /** The URL clients use, when it differs from what they send as Host (e.g. behind a port mapping). */
    publicUrl: z.string().url().optional(),
    /** Addresses or CIDRs of proxies whose X-Forwarded-Proto/Host/For headers are believed. */
    trustedProxies: z.array(z.string().min(1)).default([]),
    tls: z
      .object({
        /** Extra DNS names and IP addresses for the server certificate, beside the machine's own. */
        names: z.array(z.string().min(1)).default([]),
        /** Days a generated server certificate is valid. */
        serverCertDays: z.number().int().min(1).max(825).default(397),
        /** Renew the server certificate this many days before it expires. */
        renewBeforeDays: z.number().int().min(1).default(30),
        /** An existing CA to sign the server certificate with, instead of generating one. */
        ca: z
          .object({
            cert: z.string().min(1),
            key: z.string().min(1),
            /** Name of the environment variable holding the key's passphrase. */
            keyPassphraseEnv: z.string().min(1).optional(),
          })
          .strict()
          .optional(),
        /** An existing server certificate, key and chain, used as they are. */
        server: z
          .object({ cert: z.string().min(1), key: z.string().min(1), chain: z.string().min(1).optional() })
          .strict()
          .optional(),
      })
      .strict()
      .default({}),
    auth: authSchema.default({}),
    /** Ordered access rules; the first that matches a caller and a repository decides. Absent: the default policy. */
    policies: z.array(policyRuleSchema).optional(),
    rateLimits: rateLimitSchema.default({}),
    /** Shared state for several gateway instances (rate limits): redis://HOST:PORT[/DB]. Memory when absent. */
    redis: z
      .object({ url: z.string().regex(/^rediss?:\/\/\S+$/, "expected redis://HOST:PORT or rediss://…") })
      .strict()
      .optional(),
    log: z
      .object({ level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info") })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type LdapConfig = z.infer<typeof ldapSchema>;
export type RateLimitConfig = z.infer<typeof rateLimitSchema>;
