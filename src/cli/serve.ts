import { mkdtemp, rm } from "node:fs/promises";
import { isDeepStrictEqual } from "node:util";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { watchConfigFile } from "../config/watch.js";
import { startGateway } from "../gateway/server.js";
import { createLogger, type Logger } from "../log.js";
import { createAuditLog } from "../audit/audit-log.js";
import { checkUpstream } from "../gateway/upstream-client.js";
import { createRateLimits } from "../gateway/rate-limits.js";
import { checkWritable } from "../registry/storage/writable-check.js";
import { authFromConfig, ensureFirstUser } from "../auth/from-config.js";
import { certPaths, ensureTlsMaterial, loadSigningCa, type TlsMaterial } from "../pki/tls-material.js";
import { watchServerCertificate } from "../pki/watch.js";
import { parseHostPort } from "../http/listen-address.js";
import { startRegistryServer } from "../registry/server.js";
import { parseArgs, stringFlag } from "./args.js";
import { commonFlags, configFromArgs } from "./config-args.js";
import { startBanner } from "./banner.js";
import { UsageError } from "./errors.js";

export const serveUsage =
  "portcullis serve [--config FILE] [--listen HOST:PORT] [--data DIR] [--certs DIR] [--upstream URL]";

const renewalCheckMs = 6 * 60 * 60 * 1000;

export async function runServe(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags, "listen", "upstream"]);
  if (args.positionals.length > 0)
    throw new UsageError(`serve takes no arguments (got "${args.positionals[0]}")\nusage: ${serveUsage}`);
  const config = await configFromArgs(args);
  const logger = createLogger({ level: config.log.level });
  const listen = parseHostPort(config.listen);

  const material = await ensureTlsMaterial({ config });
  const firstUser = await ensureFirstUser(config);
  const auth = await authFromConfig(config, { logger, ca: await loadSigningCa(config) });
  const registry = config.upstream
    ? undefined
    : await startBuiltInRegistry(config.data, logger.child({ layer: "registry" }));
  const upstream = registry ? { socketPath: registry.socket } : { url: config.upstream as string };
  const audit = createAuditLog({ dataDir: config.data });
  const rateLimits = createRateLimits(config.rateLimits, { redisUrl: config.redis?.url, logger });
  if (config.redis && !(await rateLimits.ready())) {
    logger.warn(
      { redis: redactUrl(config.redis.url) },
      "redis is not answering: rate limits are counted in this process until it does",
    );
  }
  let current: TlsMaterial = material;
  const gateway = await startGateway({
    host: listen.host,
    port: listen.port,
    tls: material,
    ca: { current: () => current },
    upstream,
    trustedProxies: config.trustedProxies,
    publicUrl: config.publicUrl,
    auth,
    audit,
    rateLimits,
    readiness: {
      storage: () => checkWritable(config.data),
      upstream: () => checkUpstream(upstream),
      directories: () => auth.checkDirectories(),
    },
    logger,
  });

  const paths = certPaths(config.certs);
  const stopWatching = config.tls.server
    ? () => undefined
    : watchServerCertificate(
        paths,
        (pair) => {
          gateway.reloadTls(pair);
          logger.info("server certificate reloaded");
        },
        (error) => logger.warn({ err: error }, "could not reload the server certificate"),
      );
  let tlsConfig = config;
  const renew = () =>
    ensureTlsMaterial({ config: tlsConfig })
      .then((renewed) => {
        current = renewed;
        for (const action of renewed.actions) logger.info(action);
      })
      .catch((error: unknown) => logger.error({ err: error }, "server certificate renewal failed"));
  const renewal = setInterval(() => void renew(), renewalCheckMs);
  renewal.unref();
  // Names to cover apply at once: a changed tls section or publicUrl renews the certificate; the rest of
  // the config is read at start.
  const stopConfigWatch = watchConfigFile(resolve(stringFlag(args, "config") ?? "portcullis.yaml"), () => {
    configFromArgs(args).then(
      (next) => {
        if (isDeepStrictEqual(next.tls, tlsConfig.tls) && next.publicUrl === tlsConfig.publicUrl) {
          logger.warn("the config file changed: restart portcullis to apply changes outside tls and publicUrl");
          return;
        }
        tlsConfig = next;
        void renew();
      },
      (error: unknown) => logger.error({ err: error }, "the changed config file is not valid; keeping the running one"),
    );
  });

  process.stdout.write(
    startBanner({
      port: gateway.port,
      listenHost: listen.host,
      names: material.names,
      caCertPem: material.caCertPem,
      caFingerprint: material.caFingerprint,
      upstream: config.upstream ?? `built-in, storage in ${config.data}`,
      actions: [...material.actions, ...(firstUser ? [firstUser] : [])],
      warnings: material.warnings,
    }),
  );

  const stop = async () => {
    clearInterval(renewal);
    stopConfigWatch();
    stopWatching();
    await gateway.close();
    await auth.close();
    await rateLimits.close();
    await registry?.close();
    audit.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());
}

/** The registry layer on a unix socket in a private directory: reachable by this process's gateway only. */
async function startBuiltInRegistry(data: string, logger: Logger) {
  const dir = await mkdtemp(join(tmpdir(), "portcullis-"));
  const socket = join(dir, "registry.sock");
  const server = await startRegistryServer({ root: data, listen: `unix:${socket}`, logger });
  return {
    socket,
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A URL with its password, if any, masked: for log lines. */
function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = "***";
  return parsed.toString();
}
