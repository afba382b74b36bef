import { auditDir } from "../audit/audit-log.js";
import type { AuditRecord } from "../audit/event.js";
import { readRecords, verifyChain } from "../audit/reader.js";
import { hasSwitch, parseArgs, stringFlag } from "./args.js";
import { UsageError } from "./errors.js";
import { commonFlags, configFromArgs } from "./config-args.js";

export const auditUsage =
  "portcullis audit [--user U] [--repo R] [--action A] [--since T] [--until T] [--json] | audit verify";

/** Who did what: the audit log filtered, as a table or JSON lines; `verify` checks its hash chain. */
export async function runAudit(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags, "user", "repo", "action", "since", "until"], ["json"]);
  const config = await configFromArgs(args);
  const dir = auditDir(config.data);
  const [sub, ...extra] = args.positionals;
  if (extra.length > 0 || (sub !== undefined && sub !== "verify")) throw new UsageError(`usage: ${auditUsage}`);

  if (sub === "verify") {
    const result = verifyChain(dir);
    if (result.ok) {
      process.stdout.write(`ok: ${result.records} records, the chain is intact\n`);
      return;
    }
    process.stdout.write(
      `BROKEN: ${result.file} line ${result.line}: ${result.problem}\n(${result.records} records verified before it)\n`,
    );
    process.exitCode = 1;
    return;
  }

  const since = timeFlag(stringFlag(args, "since"), "--since");
  const until = timeFlag(stringFlag(args, "until"), "--until");
  const user = stringFlag(args, "user");
  const repo = stringFlag(args, "repo");
  const action = stringFlag(args, "action");
  const matches = (r: AuditRecord) =>
    (!user || r.actor?.name === user) &&
    (!repo || r.target?.repository === repo) &&
    (!action || r.action === action) &&
    (!since || r.time >= since) &&
    (!until || r.time <= until);

  const json = hasSwitch(args, "json");
  const rows: string[][] = [];
  for (const { record } of readRecords(dir)) {
    if (!record || !matches(record)) continue;
    if (json) process.stdout.write(`${JSON.stringify(record)}\n`);
    else rows.push(tableRow(record));
  }
  if (!json) printTable(["TIME", "ACTOR", "ACTION", "RESULT", "TARGET", "FROM"], rows);
}

function tableRow(r: AuditRecord): string[] {
  const t = r.target ?? {};
  const target = t.repository
    ? `${t.repository}${t.tag ? `:${t.tag}` : ""}${t.digest ? `@${t.digest.slice(0, 19)}…` : ""}`
    : t.user
      ? `user ${t.user}`
      : "";
  return [r.time, r.actor?.name || "(anonymous)", r.action, r.result, target, r.request?.addr ?? ""];
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
