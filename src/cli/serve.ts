import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { ensureAuthKeys, ensureFirstUser } from "../auth/from-config.js";
import type { Config } from "../config/schema.js";
import { watchConfigFile } from "../config/watch.js";
import { parseHostPort } from "../http/listen-address.js";
import { createLogger, type Logger } from "../log.js";
import { renewSessionTicketKeys } from "../pki/session-tickets.js";
import { ensureTlsMaterial, loadSigningCa } from "../pki/tls-material.js";
import { parseArgs, stringFlag } from "./args.js";
import { commonFlags, configFromArgs } from "./config-args.js";
import { startBanner } from "./banner.js";
import { UsageError } from "./errors.js";
import { listenShared, serveHandedConnections, startWorkers, workerEnv, type Workers } from "./workers.js";

export const serveUsage =
  "portcullis serve [--config FILE] [--listen HOST:PORT] [--data DIR] [--certs DIR] [--upstream URL]";

const renewalCheckMs = 6 * 60 * 60 * 1000;

/**
 * `serve`: the first process prepares what every server process reads from disk (CA, certificate, first
 * user, signing keys, session ticket keys), then serves with one process per core: itself and workers it
 * starts, which are handed connections from the one listening socket in turn. Each worker runs this too.
 */
export async function runServe(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags, "listen", "upstream"]);
  if (args.positionals.length > 0)
    throw new UsageError(`serve takes no arguments (got "${args.positionals[0]}")\nusage: ${serveUsage}`);
  const config = await configFromArgs(args);
  const logger = createLogger({ level: config.log.level });
  const workerId = process.env[workerEnv.id];
  if (workerId !== undefined) {
    return serveAsWorker(config, logger.child({ worker: Number(workerId) }), Number(process.env[workerEnv.port]));
  }

  const material = await ensureTlsMaterial({ config });
  const firstUser = await ensureFirstUser(config);
  await ensureAuthKeys(config, await loadSigningCa(config));
  await renewSessionTicketKeys(config.certs);
  const count = config.workers || availableParallelism();
  const servers = await serveWithProcesses(config, logger, count);

  let tlsConfig = config;
  const renew = () =>
    ensureTlsMaterial({ config: tlsConfig })
      .then((renewed) => {
        for (const action of renewed.actions) logger.info(action);
      })
      .catch((error: unknown) => logger.error({ err: error }, "server certificate renewal failed"));
  const renewal = setInterval(() => void renew(), renewalCheckMs);
  renewal.unref();
  // Names to cover apply at once: a changed tls section or publicUrl renews the certificate (every server
  // process watches its files); the rest of the config is read at start.
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
      port: servers.port,
      listenHost: parseHostPort(config.listen).host,
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
    await servers.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());
}

/** This process serves, and `count - 1` workers beside it share its listening socket. */
async function serveWithProcesses(
  config: Readonly<Config>,
  logger: Logger,
  count: number,
): Promise<Workers & { port: number }> {
  const { startPortcullis } = await import("../portcullis.js");
  if (count === 1) {
    const server = await startPortcullis(config, { logger });
    return { port: server.gateway.port, close: () => server.close() };
  }
  const { host, port: asked } = parseHostPort(config.listen);
  const listener = await listenShared(host, asked);
  const { port } = listener;
  const server = await startPortcullis(config, { logger: logger.child({ worker: 0 }), handedPort: port });
  const workers = await startWorkers({ count, listener, here: server.gateway.accept, logger });
  return {
    port,
    async close() {
      await workers.close();
      await server.close();
    },
  };
}

/** A worker: serves the connections the first process hands it. */
async function serveAsWorker(config: Readonly<Config>, logger: Logger, port: number): Promise<void> {
  const { startPortcullis } = await import("../portcullis.js");
  const server = await startPortcullis(config, { logger, handedPort: port });
  serveHandedConnections(server.gateway.accept, () => server.close());
}
