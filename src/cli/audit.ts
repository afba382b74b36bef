import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { auditDir } from "../audit/audit-log.js";
import { auditActions, type AuditRecord } from "../audit/event.js";
import { readRecords, verifyChain } from "../audit/reader.js";
import { hasSwitch, numberFlag, parseArgs, stringFlag } from "./args.js";
import { UsageError } from "./errors.js";
import { commonFlags, adminConfigFromArgs } from "./config-args.js";
import { endQuietlyOnClosedPipe } from "./output.js";
import { missingState } from "./server-state.js";

const auditUsage =
  "portcullis audit [--user U] [--repo R] [--action A] [--since T] [--until T] [--limit N] [--follow] [--json] | audit verify";
const followIntervalMs = 500;

/** Who did what: the audit log filtered, as a table or JSON lines; `verify` checks its hash chain. */
export async function runAudit(argv: readonly string[]): Promise<void> {
  const args = parseArgs(
    argv,
    [...commonFlags, "user", "repo", "action", "since", "until", "limit"],
    ["json", "follow"],
  );
  const config = await adminConfigFromArgs(args);
  const dir = auditDir(config.data);
  const [sub, ...extra] = args.positionals;
  if (extra.length > 0 || (sub !== undefined && sub !== "verify")) throw new UsageError(`usage: ${auditUsage}`);
  if (!existsSync(dir)) throw missingState("the audit log (audit/)", config.data, "--data DIR");

  if (sub === "verify") {
    const result = verifyChain(dir);
    if (result.ok) {
      process.stdout.write(`ok: ${result.records} records in ${dir}, the chain is intact\n`);
      return;
    }
    process.stdout.write(
      `BROKEN: ${result.file} line ${result.line}: ${result.problem}\n(${result.records} records verified before it)\n`,
    );
    process.exitCode = 1;
    return;
  }

  const action = stringFlag(args, "action");
  if (action !== undefined && !(auditActions as readonly string[]).includes(action))
    throw new UsageError(`--action ${action}: not an action the audit log records; one of ${auditActions.join(", ")}`);
  const since = timeFlag(stringFlag(args, "since"), "--since");
  const until = timeFlag(stringFlag(args, "until"), "--until");
  const user = stringFlag(args, "user");
  const repo = stringFlag(args, "repo");
  const limit = numberFlag(args, "limit");
  const matches = (r: AuditRecord) =>
    (!user || r.actor?.name === user) &&
    (!repo || r.target?.repository === repo) &&
    (!action || r.action === action) &&
    (!since || r.time >= since) &&
    (!until || r.time <= until);

  endQuietlyOnClosedPipe();
  const json = hasSwitch(args, "json");
  const all = recordsAfter(dir, 0);
  const selected = all.filter(matches);
  const shown = limit === undefined ? selected : selected.slice(-limit);
  const header = ["TIME", "ACTOR", "ACTION", "RESULT", "TARGET", "FROM"];
  if (json) for (const record of shown) process.stdout.write(`${JSON.stringify(record)}\n`);
  else printTable(header, shown.map(tableRow));
  if (!hasSwitch(args, "follow")) return;

  let lastSeq = all.at(-1)?.seq ?? 0;
  for (;;) {
    await sleep(followIntervalMs);
    const fresh = recordsAfter(dir, lastSeq);
    for (const record of fresh.filter(matches)) {
      process.stdout.write(json ? `${JSON.stringify(record)}\n` : `${tableRow(record).join("  ")}\n`);
    }
    lastSeq = fresh.at(-1)?.seq ?? lastSeq;
  }
}

/** The records after `seq`, in chain order; lines that are not JSON are left to `audit verify`. */
function recordsAfter(dir: string, seq: number): AuditRecord[] {
  const records: AuditRecord[] = [];
  for (const { record } of readRecords(dir)) if (record && record.seq > seq) records.push(record);
  return records;
}

function tableRow(r: AuditRecord): string[] {
  const t = r.target ?? {};
  return [r.time, r.actor?.name || "(anonymous)", r.action, r.result, targetText(r, t), r.request?.addr ?? ""];
}

function targetText(r: AuditRecord, t: NonNullable<AuditRecord["target"]>): string {
  if (t.repository) return `${t.repository}${t.tag ? `:${t.tag}` : ""}${t.digest ? `@${t.digest.slice(0, 19)}…` : ""}`;
  if (t.user) return `user ${t.user}`;
  if (r.action === "token") {
    // The scopes a client asked for and what it got: a dropped action is what a denied push looks like.
    const granted = (r.detail?.granted as string[] | undefined) ?? [];
    const requested = (r.detail?.requested as string[] | undefined) ?? [];
    const shown = granted.length ? granted.join(" ") : "(login only)";
    return requested.join(" ") === granted.join(" ") ? shown : `${shown} (asked ${requested.join(" ") || "nothing"})`;
  }
  return "";
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join("\n")}\n`);
}

/** An RFC 3339 time, a date, or a duration back from now: `30m`, `24h`, `7d`. */
function timeFlag(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  const relative = /^(\d+)([smhd])$/.exec(value);
  if (relative) {
    const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[relative[2] as "s" | "m" | "h" | "d"];
    return new Date(Date.now() - Number(relative[1]) * unit * 1000).toISOString();
  }
  const time = new Date(value);
  if (Number.isNaN(time.getTime()))
    throw new UsageError(
      `${flag} takes a time (2026-11-24T10:00:00Z, 2026-11-24) or a duration back from now (30m, 24h, 7d)`,
    );
  return time.toISOString();
}
