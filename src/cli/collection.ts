import type { AuditLog } from "../audit/audit-log.js";
import { auditDir } from "../audit/audit-log.js";
import type { AuditEvent } from "../audit/event.js";
import type { Config } from "../config/schema.js";
import type { Logger } from "../log.js";
import { createGarbageCollector, type GcReport } from "../registry/gc.js";
import { createInventory } from "../registry/inventory.js";
import { createRetention, type RetentionRemoval } from "../registry/retention.js";
import type { StorageDriver } from "../registry/storage/driver.js";

export interface CollectionReport {
  retention: RetentionRemoval[];
  gc: GcReport;
}

/**
 * One collection as `portcullis gc` and the schedule in `serve` run it: retention removes the tags its rules
 * name (one audit record each, naming the rule), then garbage collection sweeps (one audit record per run).
 */
export async function runCollection(deps: {
  storage: StorageDriver;
  config: Pick<Config, "data" | "gc" | "retention">;
  audit?: AuditLog;
  actor: AuditEvent["actor"];
  dryRun: boolean;
  settleMs: number;
  logger?: Logger;
}): Promise<CollectionReport> {
  const { storage, config } = deps;
  const inventory = createInventory({ storage, auditDir: auditDir(config.data) });
  const retention = createRetention({ storage, inventory });
  const removals = deps.dryRun
    ? await retention.plan(config.retention)
    : await retention.apply(config.retention, (removal) =>
        deps.audit?.record({
          action: "delete",
          result: "success",
          actor: deps.actor,
          target: {
            repository: removal.repository,
            tag: removal.tag,
            ...(removal.digest ? { digest: removal.digest } : {}),
          },
          detail: { reason: "retention", rule: removal.rule },
        }),
      );
  const gc = createGarbageCollector({
    storage,
    graceMs: config.gc.graceSeconds * 1000,
    uploadGraceMs: config.gc.uploadGraceSeconds * 1000,
    ...(deps.logger ? { logger: deps.logger } : {}),
  });
  const report = await gc.run({
    dryRun: deps.dryRun,
    settleMs: deps.settleMs,
    untagged: (repository) =>
      config.gc.untagged === "remove" || retention.removesUntagged(config.retention, repository),
  });
  if (!deps.dryRun) {
    deps.audit?.record({
      action: "gc",
      result: "success",
      actor: deps.actor,
      detail: {
        manifests: report.manifests.length,
        blobs: report.blobs.length,
        uploads: report.uploads.length,
        bytes: report.bytes,
        candidates: report.candidates.length,
        retentionRemovals: removals.length,
      },
    });
  }
  return { retention: removals, gc: report };
}
