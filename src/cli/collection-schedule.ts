import type { AuditLog } from "../audit/audit-log.js";
import type { Config } from "../config/schema.js";
import type { Logger } from "../log.js";
import { createFilesystemDriver } from "../registry/storage/filesystem.js";
import { runCollection } from "./collection.js";

/**
 * `gc.intervalMinutes` in `serve`: retention and garbage collection every so often, in the first process
 * only. Each run reads the config as it is then, so a reload changes the rules and the interval of the next
 * run; a run never overlaps the last. (One started by hand meanwhile is safe: blobs are removed under their
 * own lock, only while still candidates.)
 */
export function startCollectionSchedule(deps: { config: () => Readonly<Config>; audit: AuditLog; logger: Logger }): {
  stop(): void;
} {
  const logger = deps.logger.child({ task: "gc" });
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const schedule = () => {
    if (stopped) return;
    const minutes = deps.config().gc.intervalMinutes;
    const active = minutes > 0 && !deps.config().upstream;
    // While off, look again each minute: a reload may turn it on.
    timer = setTimeout(() => void (active ? run() : schedule()), active ? minutes * 60_000 : 60_000);
    timer.unref();
  };

  async function run(): Promise<void> {
    const config = deps.config();
    try {
      const { gc, retention } = await runCollection({
        storage: createFilesystemDriver(config.data),
        config,
        audit: deps.audit,
        actor: { name: "portcullis", source: "schedule" },
        dryRun: false,
        // The next scheduled run is what removes this run's candidates: one whole interval for any push
        // that still means to use them.
        settleMs: 0,
        logger,
      });
      logger.info({ retentionRemovals: retention.length, bytes: gc.bytes }, "scheduled collection done");
    } catch (error) {
      logger.error({ err: error }, "scheduled collection failed; the next one runs as planned");
    }
    schedule();
  }

  schedule();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
