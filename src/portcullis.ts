import { join } from "node:path";
import { auditDir, createAuditLog, type AuditLog } from "./audit/audit-log.js";
import { authFromConfig, type AuthStack } from "./auth/from-config.js";
import type { Config } from "./config/schema.js";
import { ensureConsoleSessionKey } from "./gateway/console/session-key.js";
import { createSessions } from "./gateway/console/sessions.js";
import { createRateLimits, type RateLimits } from "./gateway/rate-limits.js";
import { builtInBackend } from "./gateway/built-in-backend.js";
import { createForwardedResolver } from "./gateway/forwarded.js";
import { startGateway, type Gateway, type GatewayOptions } from "./gateway/server.js";
import { parseHostPort } from "./http/listen-address.js";
import type { Logger } from "./log.js";
import { createMirrorBackend } from "./mirror/backend.js";
import { createOrigins, describeOrigin } from "./mirror/origin.js";
import { createMirrorRoutes } from "./mirror/routes.js";
import { loadSessionTicketKeys } from "./pki/session-tickets.js";
import { certPaths, ensureTlsMaterial, loadSigningCa, type TlsMaterial } from "./pki/tls-material.js";
import { watchServerCertificate } from "./pki/watch.js";
import { createRegistry } from "./registry/app.js";
import { createGarbageCollector } from "./registry/gc.js";
import { createInventory } from "./registry/inventory.js";
import type { StorageDriver } from "./registry/storage/driver.js";
import { createFilesystemDriver } from "./registry/storage/filesystem.js";
import { checkWritable } from "./registry/storage/writable-check.js";
import { checkUpstream } from "./upstream/check.js";
import { createUpstreamClient } from "./upstream/client.js";
import { createUpstreamClients, proxiedUpstreamConfig, type UpstreamClients } from "./upstream/clients.js";

const consoleSessionMs = 8 * 60 * 60 * 1000;

export interface Portcullis {
  gateway: Gateway;
  material: TlsMaterial;
  auth: AuthStack;
  audit: AuditLog;
  rateLimits: RateLimits;
  close(): Promise<void>;
}

export interface PortcullisDeps {
  logger: Logger;
  /** Counts bcrypt comparisons (tests of the credential cache). */
  onBcrypt?: () => void;
  env?: NodeJS.ProcessEnv;
  /** Names the generated server certificate covers, instead of the machine's own. */
  names?: readonly string[];
  /** The port of a listening socket shared with other processes, whose connections reach `accept`. */
  handedPort?: number;
}

/**
 * One server process: the HTTPS gateway with token auth, rate limits and the audit log, over the built-in
 * registry (called in this process) or an upstream. Every worker of `serve` runs one; so do the tests. It
 * keeps nothing that another worker needs in memory only: uploads, locks, keys and the audit log are on
 * disk, budgets on disk or in Redis.
 */
export async function startPortcullis(config: Readonly<Config>, deps: PortcullisDeps): Promise<Portcullis> {
  const { logger } = deps;
  const listen = parseHostPort(config.listen);
  const material = await ensureTlsMaterial({ config, names: deps.names });
  const auth = await authFromConfig(config, {
    logger,
    ca: await loadSigningCa(config),
    env: deps.env,
    onBcrypt: deps.onBcrypt,
  });
  const audit = createAuditLog({ dataDir: config.data });
  const rateLimits = createRateLimits(config.rateLimits, {
    redisUrl: config.redis?.url,
    stateFile: join(config.data, "state", "rate-limits.sqlite"),
    logger,
  });
  const proxied = proxiedUpstreamConfig(config);
  const upstream = proxied && createUpstreamClient(proxied, { logger });
  const mirrorUpstreams =
    !upstream && config.mirrors.length > 0 ? createUpstreamClients(config, { logger }) : undefined;
  let current = material;
  const storage = upstream ? undefined : createFilesystemDriver(config.data);
  const originOf = createOrigins(config);
  const consoleRegistry = storage && {
    inventory: createInventory({ storage, auditDir: auditDir(config.data) }),
    originOf: (repository: string) => {
      const origin = originOf(repository);
      return origin && describeOrigin(origin);
    },
    gcDryRun: () =>
      createGarbageCollector({
        storage,
        graceMs: config.gc.graceSeconds * 1000,
        uploadGraceMs: config.gc.uploadGraceSeconds * 1000,
      }).run({ dryRun: true, untagged: config.gc.untagged === "remove" }),
  };
  const gateway = await startGateway({
    listen: deps.handedPort === undefined ? listen : { handed: true, port: deps.handedPort },
    tls: material,
    sessionTicketKeys: await loadSessionTicketKeys(config.certs),
    ca: { current: () => current },
    registry: storage
      ? builtInRegistry(config, storage, logger, mirrorUpstreams)
      : { upstream: upstream as NonNullable<typeof upstream> },
    trustedProxies: config.trustedProxies,
    publicUrl: config.publicUrl,
    auth,
    audit,
    rateLimits,
    console: {
      sessions: createSessions({
        key: await ensureConsoleSessionKey(config.certs),
        revokedDir: join(config.data, "state", "console-signed-out"),
        lifetimeMs: consoleSessionMs,
      }),
      registry: consoleRegistry,
      auditDir: auditDir(config.data),
    },
    readiness: {
      storage: () => checkWritable(config.data),
      ...(upstream ? { upstream: () => checkUpstream(upstream) } : {}),
      directories: () => auth.checkDirectories(),
    },
    logger,
  });
  const stopWatching = config.tls.server
    ? () => undefined
    : watchServerCertificate(
        certPaths(config.certs),
        (pair) => {
          gateway.reloadTls(pair);
          current = { ...current, ...pair };
          logger.info("server certificate reloaded");
        },
        (error) => logger.warn({ err: error }, "could not reload the server certificate"),
      );
  return {
    gateway,
    material,
    auth,
    audit,
    rateLimits,
    async close() {
      stopWatching();
      await gateway.close();
      await auth.close();
      await rateLimits.close();
      audit.close();
      mirrorUpstreams?.close();
      upstream?.close();
    },
  };
}

/** The built-in registry, with the configured pull-through caches in front of its mirrored repositories. */
function builtInRegistry(
  config: Readonly<Config>,
  storage: StorageDriver,
  logger: Logger,
  upstreams: UpstreamClients | undefined,
): GatewayOptions["registry"] {
  const registry = createRegistry({ storage, logger: logger.child({ layer: "registry" }) });
  if (!upstreams) return { builtIn: registry };
  const forwarded = createForwardedResolver({ trustedProxies: config.trustedProxies, publicUrl: config.publicUrl });
  return {
    backend: createMirrorBackend({
      builtIn: builtInBackend(registry, forwarded),
      storage,
      routes: createMirrorRoutes(config.mirrors, config.groups),
      upstream: (name) => upstreams.get(name),
      logger: logger.child({ layer: "mirror" }),
    }),
  };
}
