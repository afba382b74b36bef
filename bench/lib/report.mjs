// The run's samples, their table and the report around it (the console, the RESULTS file, a JSON dump).

import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { summarize } from "./stats.mjs";
import { fmt, markdownTable } from "./table.mjs";
import { tlsSummary } from "./tls-probe.mjs";
import { MiB } from "./units.mjs";

const GENERATED_MARK = "<!-- Everything below this line is written by `npm run bench`; edit above it only. -->";

const DIGITS = { s: 2, "CPU s": 2, ms: 0, "MB/s": 0, "%": 0, "req/s": 0, MiB: 0 };

/** Every sample of a run: `record(row, side, value, detail)`, the ceiling's per round, notes worth reading. */
export function createSamples() {
  const values = {};
  const details = {};
  const ceiling = [];
  const warnings = [];
  const processCounts = {};
  const busiest = {};
  const logs = [];
  return {
    values,
    details,
    ceiling,
    warnings,
    processCounts,
    busiest,
    logs,
    /** Server output worth keeping (in the JSON dump): why a process exited mid-session. */
    keepLog(where, output) {
      logs.push({ where, output });
    },
    /** Keeps the per-process peaks of a side's busiest session (the highest total) of the run. */
    keepBusiest(side, bytes, peaks) {
      if (bytes > (busiest[side]?.bytes ?? -1)) busiest[side] = { bytes, peaks };
    },
    /** The most processes one side's session had (a server's workers, nginx's). */
    countProcesses(side, count) {
      processCounts[side] = Math.max(processCounts[side] ?? 0, count);
    },
    record(row, side, value, detail) {
      ((values[row] ??= {})[side] ??= []).push(value);
      if (detail) ((details[row] ??= {})[side] ??= new Set()).add(detail);
    },
    /** A round's ceiling, its best static-file GET (the ceiling session runs first in every round). */
    recordCeiling(value) {
      ceiling.push(value);
    },
    warn(text) {
      if (!warnings.includes(text)) warnings.push(text);
    },
  };
}

function cell(summary, unit) {
  if (!summary) return "-";
  const d = DIGITS[unit] ?? 1;
  return summary.n === 1
    ? fmt(summary.median, d)
    : `${fmt(summary.min, d)} / ${fmt(summary.median, d)} / ${fmt(summary.max, d)}`;
}

/**
 * Portcullis's median against the better of the references' medians; inverted for lower-is-better rows so
 * that > 1 always means Portcullis is ahead.
 */
function ratio(row, ours, references) {
  const theirs = references.filter(Boolean).map((s) => s.median);
  if (!row.better || !ours || theirs.length === 0) return null;
  if (row.better === "higher") return ours.median / Math.max(...theirs);
  return Math.min(...theirs) / ours.median;
}

/** The markdown table: a row per case, min / median / max per side, the ratio. */
export function resultsTable(rows, samples, sides, portcullisId, firstColumn = "case (unit)") {
  const references = sides.filter((s) => s.id !== portcullisId && s.reference !== false);
  const header = [
    firstColumn,
    ...sides.map((s) => `${s.label}: min / median / max`),
    "ratio: Portcullis ÷ faster reference (> 1 = Portcullis better; times, memory inverted)",
  ];
  const body = rows.map((row) => {
    const of = (side) => summarize(samples.values[row.id]?.[side.id] ?? []);
    const r = ratio(
      row,
      of({ id: portcullisId }),
      references.map((s) => of(s)),
    );
    return [
      `${row.label} (${row.unit})`,
      ...sides.map((s) => cell(of(s), row.unit)),
      r === null ? "-" : `${fmt(r, 2)}×`,
    ];
  });
  return markdownTable([header, ...body]);
}

/** The header block: when, where, with what, and how each side's TLS and authentication looked. */
export function headerBlock({
  started,
  seconds,
  load,
  machine,
  versions,
  opts,
  tls,
  sides,
  samples,
  firstStartMs,
  ceilingLabel,
}) {
  const lines = [];
  lines.push(`## Run of ${started.toISOString().replace(/\.\d+Z$/, "Z")}${opts.full ? "" : " (scaled down)"}`);
  lines.push("");
  lines.push(
    `- Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.kernel}; ` +
      `storage roots and images on ${machine.tmpFilesystem}, pulls to /dev/shm.`,
  );
  lines.push(
    `- Versions: ${Object.entries(versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}.`,
  );
  lines.push(
    `- Settings: ${opts.rounds} round(s), sides in alternating order; one-layer image ${opts.bigMiB} MiB; ` +
      `${opts.clients} concurrent pulls; ab -k -c ${opts.connections} for ${opts.seconds} s per rate; ` +
      `cases ${opts.cases.join(", ")}; Portcullis run from ${opts.portcullisShown}. ` +
      `The run took ${(seconds / 60).toFixed(1)} min; load average (1 min) ${fmt(load.start, 2)} at its start, ` +
      `${fmt(load.end, 2)} at its end (anything else running skews the sides unevenly).`,
  );
  lines.push(
    "- TLS, as an OpenSSL client (curl, ab, Node) negotiates it; every server has the same certificate and key:",
  );
  for (const side of [...sides, { id: "ceiling", label: ceilingLabel }]) {
    if (tls[side.id]) lines.push(`  - ${side.label}: ${tlsSummary(tls[side.id])}`);
  }
  lines.push("- Authentication:");
  for (const side of sides) lines.push(`  - ${side.label}: ${side.auth}`);
  const ceiling = summarize(samples.ceiling);
  if (ceiling)
    lines.push(
      `- Ceiling, ${ceilingLabel}, best of 3 curl GETs of the same blob a round: ${cell(ceiling, "MB/s")} MB/s.`,
    );
  for (const [row, perSide] of Object.entries(samples.details)) {
    const text = sides
      .filter((s) => perSide[s.id])
      .map((s) => `${s.label} ${[...perSide[s.id]].join(", ")}`)
      .join("; ");
    lines.push(`- HTTP version curl used, ${row}: ${text}.`);
  }
  lines.push(
    `- Portcullis's first start, generating its CA, certificate and keys: ${fmt(firstStartMs, 0)} ms (not a cold-start sample).`,
  );
  lines.push(
    "- Peak RSS is the sum of each process's own peak (VmHWM, reset at the start of the phase): " +
      "A the registry; B the registry, nginx's master and workers; Portcullis its primary and every worker " +
      `(processes seen: ${sides.map((s) => `${s.label} ${samples.processCounts[s.id] ?? "-"}`).join(", ")}).`,
  );
  const byProcess = sides
    .filter((s) => samples.busiest[s.id])
    .map(
      (s) => `${s.label}: ${samples.busiest[s.id].peaks.map((p) => `${p.name} ${fmt(p.bytes / MiB, 0)}`).join(", ")}`,
    );
  if (byProcess.length > 0)
    lines.push(`- Peak RSS by process (MiB) in each side's busiest session: ${byProcess.join("; ")}.`);
  for (const warning of samples.warnings) lines.push(`- Note: ${warning}`);
  return lines.join("\n");
}

const defaultIntro = `# Benchmarks\n\nRun \`npm run bench\`; see the README's Benchmarks section.\n`;

/** Writes `generated` below the mark in `file`, keeping the hand-written part above it. */
export async function writeReport(file, generated) {
  const existing = fs.existsSync(file) ? await fsp.readFile(file, "utf8") : "";
  const at = existing.indexOf(GENERATED_MARK);
  const intro = at >= 0 ? existing.slice(0, at) : existing || defaultIntro;
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, `${intro.trimEnd()}\n\n${GENERATED_MARK}\n\n${generated}\n`);
}

/** All samples as JSON, for a closer look than the table. */
export async function writeSamples(file, report) {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const replacer = (_key, value) => (value instanceof Set ? [...value] : value);
  await fsp.writeFile(file, `${JSON.stringify(report, replacer, 2)}\n`);
}
