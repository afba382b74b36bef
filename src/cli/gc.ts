import { createAuditLog } from "../audit/audit-log.js";
import { createFilesystemDriver } from "../registry/storage/filesystem.js";
import { adminActor } from "./admin-actor.js";
import { hasSwitch, parseArgs, stringFlag } from "./args.js";
import { runCollection, type CollectionReport } from "./collection.js";
import { adminConfigFromArgs, commonFlags } from "./config-args.js";
import { UsageError } from "./errors.js";
import { requireExisting } from "./server-state.js";

const gcUsage = "portcullis gc [--dry-run] [--json] [--settle SECONDS]";

/**
 * Applies the retention rules, then collects garbage in the server's storage root while the server keeps
 * serving. Blobs found unreferenced are marked, and removed after `--settle` seconds if nothing used them.
 */
export async function runGc(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags, "settle"], ["dry-run", "json"]);
  if (args.positionals.length > 0) throw new UsageError(`usage: ${gcUsage}`);
  const settle = Number(stringFlag(args, "settle") ?? "5");
  if (!Number.isFinite(settle) || settle < 0)
    throw new UsageError(`--settle expects seconds, e.g. 5\nusage: ${gcUsage}`);
  const config = await adminConfigFromArgs(args);
  requireExisting(config.data, "the storage root", "--data DIR");
  const dryRun = hasSwitch(args, "dry-run");
  const audit = dryRun ? undefined : createAuditLog({ dataDir: config.data });
  let report: CollectionReport;
  try {
    report = await runCollection({
      storage: createFilesystemDriver(config.data),
      config,
      ...(audit ? { audit } : {}),
      actor: adminActor(),
      dryRun,
      settleMs: settle * 1000,
    });
  } finally {
    audit?.close();
  }
  if (hasSwitch(args, "json")) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const verb = dryRun ? "would remove" : "removed";
  for (const r of report.retention) process.stdout.write(`${verb} tag ${r.repository}:${r.tag} (rule: ${r.rule})\n`);
  for (const m of report.gc.manifests) process.stdout.write(`${verb} manifest ${m.repository}@${m.digest}\n`);
  for (const b of report.gc.blobs) process.stdout.write(`${verb} blob ${b.digest} (${b.size} bytes)\n`);
  for (const u of report.gc.uploads) process.stdout.write(`${verb} upload ${u.repository} ${u.id} (${u.size} bytes)\n`);
  const left = report.gc.candidates.length;
  process.stdout.write(
    `${dryRun ? "would reclaim" : "reclaimed"} ${report.gc.bytes} bytes` +
      (!dryRun && left > 0 ? `; ${left} blobs marked, removed by the next run if still unused` : "") +
      (dryRun && report.retention.length > 0 ? "; the removed tags' layers go in the run after" : "") +
      "\n",
  );
}
