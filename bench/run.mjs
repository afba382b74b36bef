// npm run bench: Portcullis side by side with Debian's docker-registry (A: its own TLS; B: behind nginx
// terminating TLS), on loopback, every case in every round with the sides in alternating order, and nginx
// serving the big blob as a static file over TLS 1.3 as the machine's ceiling. Prints one markdown table
// and writes it to bench/RESULTS.md (a scaled-down run: bench/results/last-run.md). Options: --help.

import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cpuRows, plannedSessions, tableRows } from "./lib/cases.mjs";
import { runWithCleanup } from "./lib/cleanup.mjs";
import { imageSpecs, writeImages } from "./lib/images.mjs";
import { machine, versions } from "./lib/machine.mjs";
import { parseOptions } from "./lib/options.mjs";
import { createSamples, headerBlock, resultsTable, writeReport, writeSamples } from "./lib/report.mjs";
import { runCommand } from "./lib/run-command.mjs";
import { prepareSetup } from "./lib/setup.mjs";
import { benchSides, floor, portcullis, staticCeiling } from "./lib/sides.mjs";
import { tail } from "./lib/tail.mjs";
import { fmt } from "./lib/table.mjs";
import { describeTls } from "./lib/tls-probe.mjs";
import { MiB } from "./lib/units.mjs";

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const TOOLS = ["skopeo", "docker-registry", "nginx", "curl", "ab", "openssl"];

async function checkTools() {
  const missing = [];
  for (const tool of TOOLS) {
    await runCommand("sh", ["-c", `command -v ${tool}`]).catch(() => missing.push(tool));
  }
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(", ")}: run test/setup/install-tools.sh (as root) first`);
  }
}

/** The images the sessions need, in the work dir, readable by nginx's workers (the ceiling serves one). */
async function prepareImages(setup, opts, sessions) {
  const all = imageSpecs({ bigMiB: opts.bigMiB, manyLayers: opts.layers });
  const needed = { big: all.big, warmUp: all.warmUp };
  for (const name of ["layers100", "layers200", "typical"]) {
    if (sessions.some((s) => s.id === name)) needed[name] = all[name];
  }
  const root = path.join(setup.work, "images");
  const started = performance.now();
  const images = await writeImages(root, needed);
  await fsp.chmod(root, 0o755);
  for (const image of Object.values(images)) await fsp.chmod(image.dir, 0o755);
  await fsp.chmod(images.big.biggestLayer.file, 0o644);
  const total = Object.values(images).reduce((a, i) => a + i.bytes, 0);
  console.log(
    `made ${Object.keys(images).join(", ")} (${fmt(total / MiB, 0)} MiB of random layers) in ${fmt((performance.now() - started) / 1000)} s`,
  );
  return images;
}

const portOf = (url) => Number(new URL(url).port);

let started = 0;

async function runSession({ session, side, round, opts, setup, images, samples, tls, rows }) {
  const variant = session.static
    ? { root: images.big.dir }
    : side.id === floor.id
      ? { root: images[session.image].dir }
      : session.variant;
  const instance = await side.start(setup, variant, {
    profileName: `${String(++started).padStart(3, "0")}-${session.id}-round${round + 1}`,
  });
  const label = `round ${round + 1}/${opts.rounds} ${session.id.padEnd(14)} ${side.label.padEnd(31)}`;
  const record = (row, value, detail) => {
    samples.record(row, side.id, value, detail);
    const r = rows.find((x) => x.id === row);
    console.log(
      `${label} ${r?.label ?? row}: ${fmt(value, r?.unit === "s" || r?.unit === "CPU s" ? 2 : 0)} ${r?.unit ?? ""}`,
    );
  };
  if (session.coldStart) record("cold-start", instance.coldStartMs);
  if (instance.stalledAtStart > 0) {
    samples.warn(
      `${side.label}, ${session.id} session, round ${round + 1}: ${instance.stalledAtStart} connection(s) it accepted ` +
        "while starting were still unanswered 2 s after a later one was answered",
    );
  }
  let stopped;
  try {
    tls[side.id] ??= await describeTls(portOf(instance.url), setup.tls.caPem);
    await session.run(instance, {
      side,
      setup,
      images,
      opts,
      has: (caseId) => opts.cases.includes(caseId),
      record,
      recordCeiling: (value) => {
        samples.recordCeiling(value);
        console.log(`${label} best curl GET of the blob: ${fmt(value, 0)} MB/s`);
      },
      roundCeiling: () => samples.ceiling[round] ?? null,
      warn: (text) => samples.warn(`${side.label}: ${text}`),
    });
  } catch (err) {
    for (const proc of instance.processes) {
      const out = tail(proc.output(), 3000).trim();
      err.message += `\n--- ${proc.name} (${proc.alive() ? "running" : "exited"}), output (tail) ---\n${out || "(none)"}`;
    }
    throw err;
  } finally {
    stopped = await instance.stop();
  }
  for (const note of stopped.notes) samples.warn(`${side.label}, ${session.id} session, round ${round + 1}: ${note}`);
  if (stopped.exitedOutput) {
    console.error(
      `${label} a server process exited during the session or outlived its first process; the servers' output:\n${stopped.exitedOutput}`,
    );
    samples.keepLog(`${side.label}, ${session.id} session, round ${round + 1}`, stopped.exitedOutput);
  }
  samples.countProcesses(side.id, stopped.processCount);
  if (!session.static) samples.keepBusiest(side.id, stopped.lifetimePeakBytes, stopped.processPeaks);
  return stopped.lifetimePeakBytes;
}

async function main() {
  const opts = parseOptions(process.argv.slice(2), process.env, projectRoot);
  await checkTools();
  const started = new Date();
  const clock = performance.now();
  const loadAtStart = os.loadavg()[0];
  const sides = benchSides.filter((s) => opts.sides.includes(s.id));
  const sideById = Object.fromEntries([...sides, staticCeiling].map((s) => [s.id, s]));
  const sessions = plannedSessions(opts);
  const rows = tableRows(opts);
  const cpu = cpuRows(opts);
  console.log(
    `${opts.full ? "full" : "scaled-down"} run: ${opts.rounds} round(s), sessions ${sessions.map((s) => s.id).join(", ")}`,
  );

  const { setup, firstStartMs } = await prepareSetup({ dist: opts.portcullis, cpuProf: opts.cpuProf });
  const images = await prepareImages(setup, opts, sessions);
  const samples = createSamples();
  const tls = {};

  for (let round = 0; round < opts.rounds; round++) {
    const busiest = {};
    for (const session of sessions) {
      const order = round % 2 === 0 ? session.sides : [...session.sides].reverse();
      for (const sideId of order) {
        const peak = await runSession({
          session,
          side: sideById[sideId],
          round,
          opts,
          setup,
          images,
          samples,
          tls,
          rows: [...rows, ...cpu],
        });
        if (!session.static) busiest[sideId] = Math.max(busiest[sideId] ?? 0, peak);
      }
    }
    for (const [sideId, peak] of Object.entries(busiest)) samples.record("rss-max", sideId, peak / MiB);
  }

  const header = headerBlock({
    started,
    seconds: (performance.now() - clock) / 1000,
    load: { start: loadAtStart, end: os.loadavg()[0] },
    machine: machine(),
    versions: await versions(opts.portcullis),
    opts: {
      ...opts,
      portcullisShown: path.relative(projectRoot, opts.portcullis).startsWith("..")
        ? opts.portcullis
        : path.relative(projectRoot, opts.portcullis),
    },
    tls,
    sides,
    samples,
    firstStartMs,
    ceilingLabel: staticCeiling.label,
  });
  const table = [
    resultsTable(rows, samples, sides, portcullis.id),
    "CPU seconds each operation cost, user + system, summed over the server's processes and over the clients " +
      "(on 2 cores they compete: the faster side is often the one whose server leaves skopeo more of the CPU):",
    resultsTable(cpu, samples, sides, portcullis.id, "operation: whose CPU (unit)"),
  ].join("\n\n");
  console.log(`\n${header}\n\n${table}\n`);
  await writeReport(opts.out, `${header}\n\n${table}`);
  const json = path.join(projectRoot, "bench", "results", "last-run.json");
  await writeSamples(json, { started, opts, tls, firstStartMs, samples });
  console.log(`wrote ${path.relative(process.cwd(), opts.out)} and ${path.relative(process.cwd(), json)}`);
}

runWithCleanup(main);
