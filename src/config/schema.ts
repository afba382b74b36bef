import { z } from "zod";

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5}$/, "expected HOST:PORT, e.g. 0.0.0.0:5000 or [::]:5000");

/**
 * The one schema for `portcullis.yaml`: every key, its default and its form. Unknown keys are errors at
 * every depth, so a misspelt key is caught at load instead of silently ignored.
 */
export const configSchema = z
  .object({
    /** Where the HTTPS gateway listens. 5000 is the port every registry:2 guide uses. */
    listen: hostPort.default("0.0.0.0:5000"),
    /** Storage root of the built-in registry (registry:2's `rootdirectory`). */
    data: z.string().min(1).default("data"),
    /** Home of the CA, server certificate and keys. */
    certs: z.string().min(1).default("certs"),
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
    log: z
      .object({ level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info") })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
