import { join } from "node:path";
import { Writable } from "node:stream";
import { auditDir } from "../../src/audit/audit-log.js";
import type { AuditRecord } from "../../src/audit/event.js";
import { readRecords } from "../../src/audit/reader.js";
import type { AuthStack } from "../../src/auth/from-config.js";
import { hashPassword, writeHtpasswd } from "../../src/auth/authn/htpasswd-file.js";
import { configSchema, type Config } from "../../src/config/schema.js";
import type { Gateway } from "../../src/gateway/server.js";
import { createLogger } from "../../src/log.js";
import { startPortcullis } from "../../src/portcullis.js";
import { httpsRequest, type HttpsResponse } from "./https-client.js";
import { makeTempDir } from "./temp-dir.js";

export interface AuthGatewayUnderTest {
  url: string;
  port: number;
  caPem: string;
  certsDir: string;
  config: Config;
  auth: AuthStack;
  /** bcrypt comparisons made so far. */
  bcryptCount(): number;
  /** Every log line written so far (the diagnostic log, as JSON lines). */
  logs(): string;
  /** The audit log's records so far, oldest first. */
  auditRecords(): AuditRecord[];
  auditDir: string;
  /** GET /token with Basic credentials (or none) for these scopes. */
  token(
    user: string | undefined,
    password: string | undefined,
    scopes: string[],
    localAddress?: string,
  ): Promise<HttpsResponse>;
  /** A request to the gateway, trusting its CA. */
  request(
    path: string,
    options?: { method?: string; headers?: Record<string, string>; body?: string | Buffer; localAddress?: string },
  ): Promise<HttpsResponse>;
  gateway: Gateway;
  stop(): Promise<void>;
}

/**
 * The whole server (`startPortcullis`, as each `serve` worker runs it) in this process on 127.0.0.1:0:
 * `users` are written to its htpasswd file, `settings` are merged into the config (auth, policies, …).
 */
export async function startAuthGatewayUnderTest(options: {
  users: Record<string, string>;
  settings?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}): Promise<AuthGatewayUnderTest> {
  const dir = await makeTempDir("portcullis-auth-");
  const config = configSchema.parse({
    listen: "127.0.0.1:0",
    certs: join(dir.path, "certs"),
    data: join(dir.path, "data"),
    log: { level: "debug" },
    ...options.settings,
  });
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString("utf8"));
      done();
    },
  });
  const logger = createLogger({ level: "debug", destination: sink });
  const entries = await Promise.all(
    Object.entries(options.users).map(async ([user, password]) => ({ user, hash: await hashPassword(password) })),
  );
  await writeHtpasswd(join(config.certs, "htpasswd"), entries);
  let compares = 0;
  const server = await startPortcullis(config, {
    logger,
    env: options.env,
    onBcrypt: () => compares++,
    names: ["localhost", "127.0.0.1"],
  });
  const { gateway, material, auth } = server;
  const url = `https://127.0.0.1:${gateway.port}`;
  const caPem = material.caCertPem as string;
  const request: AuthGatewayUnderTest["request"] = (path, init = {}) =>
    httpsRequest(`${url}${path}`, { ca: caPem, ...init });
  return {
    url,
    port: gateway.port,
    caPem,
    certsDir: config.certs,
    config,
    auth,
    bcryptCount: () => compares,
    logs: () => lines.join(""),
    auditRecords: () =>
      [...readRecords(auditDir(config.data))].flatMap((entry) => (entry.record ? [entry.record] : [])),
    auditDir: auditDir(config.data),
    token(user, password, scopes, localAddress) {
      const query = new URLSearchParams({ service: config.auth.service });
      for (const scope of scopes) query.append("scope", scope);
      const headers: Record<string, string> =
        user === undefined ? {} : { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` };
      return request(`/token?${query}`, { headers, localAddress });
    },
    request,
    gateway,
    async stop() {
      await server.close();
      await dir.stop();
    },
  };
}
