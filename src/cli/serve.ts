import { availableParallelism } from "node:os";
import { ensureAuthKeys, ensureFirstUser } from "../auth/from-config.js";
import type { ReloadPlan } from "../config/reload.js";
import type { Config } from "../config/schema.js";
import { parseHostPort } from "../http/listen-address.js";
import { createLogger, type Logger } from "../log.js";
import { ensureConsoleSessionKey } from "../gateway/console/session-key.js";
import { renewSessionTicketKeys } from "../pki/session-tickets.js";
import { ensureTlsMaterial, loadSigningCa } from "../pki/tls-material.js";
import { startPortcullis, type Portcullis } from "../portcullis.js";
import { proxiedUpstreamConfig, unnamedUpstream } from "../upstream/clients.js";
import { parseArgs, type ParsedArgs } from "./args.js";
import { adminFlags, commonFlags, configFromArgs } from "./config-args.js";
import { startBanner } from "./banner.js";
import { UsageError } from "./errors.js";
import { startCollectionSchedule } from "./collection-schedule.js";
import { startServeReloader } from "./serve-reload.js";
import { listenShared, serveHandedConnections, startWorkers, workerEnv, type Workers } from "./workers.js";

export const serveUsage =
  "portcullis serve [--config FILE] [--listen HOST:PORT] [--data DIR] [--certs DIR] [--upstream URL]";

const renewalCheckMs = 6 * 60 * 60 * 1000;

/**
 * `serve`: the first process prepares what every server process reads from disk (CA, certificate, first
 * user, signing keys, session ticket keys), then serves with one process per core: itself and workers it
 * starts, which accept from the one listening socket the first process sends them. Each worker runs this too.
 */
export async function runServe(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags, "listen", "upstream"]);
  if (args.positionals.length > 0)
    throw new UsageError(`serve takes no arguments (got "${args.positionals[0]}")\nusage: ${serveUsage}`);
  const config = await configFromArgs(args);
  const logger = createLogger({ level: config.log.level });
  const workerId = process.env[workerEnv.id];
  if (workerId !== undefined) {
    const port = Number(process.env[workerEnv.port]);
    return serveAsWorker(args, config, logger.child({ worker: Number(workerId) }), port);
  }

  const hints = adminFlags(args, config);
  const material = await ensureTlsMaterial({ config });
  const firstUser = await ensureFirstUser(config, hints);
  await ensureAuthKeys(config, await loadSigningCa(config));
  await renewSessionTicketKeys(config.certs);
  await ensureConsoleSessionKey(config.certs);
  const count = config.workers || availableParallelism();
  const servers = await serveWithProcesses(config, logger, count, material.names);

  let tlsConfig = config;
  let currentConfig = config;
  const renew = () =>
    ensureTlsMaterial({ config: tlsConfig })
      .then((renewed) => {
        for (const action of renewed.actions) logger.info(action);
      })
      .catch((error: unknown) => logger.error({ err: error }, "server certificate renewal failed"));
  const renewal = setInterval(() => void renew(), renewalCheckMs);
  renewal.unref();
  // Each process reloads what it can of a changed config (on SIGHUP, which this one passes on, and when the
  // file changes); names to cover are this one's to renew (every server process watches the certificate).
  const reloader = startServeReloader(
    args,
    config,
    async (next, plan) => {
      applyReload(servers.here, next, plan);
      currentConfig = next;
      if (plan.reload.includes("tls") || plan.restart.includes("publicUrl")) {
        tlsConfig = next;
        await renew();
      }
    },
    logger,
  );
  process.on("SIGHUP", () => servers.signal("SIGHUP"));
  const collection = startCollectionSchedule({
    config: () => currentConfig,
    audit: servers.here.audit,
    logger,
  });

  process.stdout.write(
    startBanner({
      port: servers.port,
      listenHost: parseHostPort(config.listen).host,
      names: material.names,
      caCertPem: material.caCertPem,
      caFingerprint: material.caFingerprint,
      upstream: registryDescription(config),
      actions: [...material.actions, ...(firstUser ? [firstUser] : [])],
      warnings: material.warnings,
      hintFlags: hints,
    }),
  );

  const stop = async () => {
    clearInterval(renewal);
    collection.stop();
    reloader.stop();
    await servers.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());
}

/** What a running server process takes of a reloaded config. */
function applyReload(server: Portcullis, next: Config, plan: ReloadPlan): void {
  server.auth.reload(next);
  if (plan.reload.includes("rateLimits")) server.rateLimits.reconfigure(next.rateLimits);
}

/** This process serves, and `count - 1` workers beside it share its listening socket. */
async function serveWithProcesses(
  config: Readonly<Config>,
  logger: Logger,
  count: number,
  names: readonly string[],
): Promise<Workers & { port: number; here: Portcullis }> {
  if (count === 1) {
    const server = await startPortcullis(config, { logger, names });
    return { port: server.gateway.port, here: server, signal: () => undefined, close: () => server.close() };
  }
  const { host, port: asked } = parseHostPort(config.listen);
  const listener = await listenShared(host, asked);
  const { port } = listener;
  const server = await startPortcullis(config, { logger: logger.child({ worker: 0 }), handedPort: port, names });
  const workers = await startWorkers({ count, listener, here: server.gateway.accept, logger });
  return {
    port,
    here: server,
    signal: (name) => workers.signal(name),
    async close() {
      await workers.close();
      await server.close();
    },
  };
}

/** A worker: serves the connections the first process hands it, and reloads as the first process does. */
async function serveAsWorker(args: ParsedArgs, config: Readonly<Config>, logger: Logger, port: number): Promise<void> {
  // The first process has made the certificate cover every name: no need to look the machine's up again.
  const server = await startPortcullis(config, { logger, handedPort: port, names: [] });
  const reloader = startServeReloader(args, config, (next, plan) => applyReload(server, next, plan), logger);
  serveHandedConnections(server.gateway.accept, async () => {
    reloader.stop();
    await server.close();
  });
}

/** What the banner says serves `/v2/`: the built-in storage, or the upstream (by name and URL). */
function registryDescription(config: Config): string {
  const proxied = proxiedUpstreamConfig(config);
  if (!proxied) return `built-in, storage in ${config.data}`;
  return proxied.name === unnamedUpstream ? proxied.url : `upstream "${proxied.name}" at ${proxied.url}`;
}
