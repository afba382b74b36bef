// The run's settings: flags first, then BENCH_* environment variables, then the defaults (the full run).

import path from "node:path";
import { parseFlags, positiveInt, usageError } from "./command-line.mjs";

const CASES = [
  "skopeo-big",
  "skopeo-100",
  "skopeo-200",
  "skopeo-typical",
  "skopeo-8",
  "curl-get",
  "curl-put",
  "head",
  "v2",
  "token",
];
const SIDES = ["registry-tls", "nginx-registry", "portcullis", "floor"];

const DEFAULTS = {
  rounds: 3,
  bigMiB: 512,
  layers: [100, 200],
  clients: 8,
  connections: 32,
  seconds: 2,
  cases: CASES,
  sides: SIDES,
};

export const usage = `usage: npm run bench [-- options]      (or node bench/run.mjs [options] after npm run build)
  --rounds N          BENCH_ROUNDS       rounds, sides in alternating order (default ${DEFAULTS.rounds})
  --big-mib N         BENCH_BIG_MIB      size of the one-layer image (default ${DEFAULTS.bigMiB})
  --layers N,M        BENCH_LAYERS       layer counts of the two many-layer images (default ${DEFAULTS.layers})
  --clients N         BENCH_CLIENTS      skopeo clients pulling at once (default ${DEFAULTS.clients})
  --connections N     BENCH_CONNECTIONS  ab's keep-alive connections (default ${DEFAULTS.connections})
  --seconds N         BENCH_SECONDS      length of each ab run (default ${DEFAULTS.seconds})
  --cases A,B         BENCH_CASES        some of: ${CASES.join(", ")}
  --sides A,B         BENCH_SIDES        some of: ${SIDES.join(", ")}
  --portcullis FILE   BENCH_PORTCULLIS   the CLI to run (default dist/cli/main.js; e.g. a copy of a good build)
  --out FILE          BENCH_OUT          where the report goes (default bench/RESULTS.md for a full run,
                                         bench/results/last-run.md for a scaled-down one)
  --cpu-prof DIR      BENCH_CPU_PROF     run Portcullis under node --cpu-prof, a dir per server start under DIR
                                         with each measured phase's times; node bench/profile-summary.mjs DIR
                                         says where each phase's CPU went (a profiled run is never a full one)
Quick run: BENCH_ROUNDS=1 BENCH_BIG_MIB=64 BENCH_CASES=curl-get,head npm run bench`;

function list(flag, text, allowed) {
  const items = text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = items.filter((item) => !allowed.includes(item));
  if (items.length === 0 || unknown.length > 0)
    usageError(usage, `${flag}: unknown ${unknown.join(", ") || "(empty)"}`);
  return allowed.filter((item) => items.includes(item));
}

function layerCounts(flag, text) {
  const counts = text.split(",").map((n) => positiveInt(usage, flag, n));
  if (counts.length !== 2) usageError(usage, `${flag} takes two counts, e.g. 100,200`);
  return counts;
}

/** The settings, with `full` true when nothing was scaled down (that run's report is bench/RESULTS.md). */
export function parseOptions(argv, env, projectRoot) {
  const given = {};
  const fromEnv = {
    rounds: "BENCH_ROUNDS",
    bigMiB: "BENCH_BIG_MIB",
    layers: "BENCH_LAYERS",
    clients: "BENCH_CLIENTS",
    connections: "BENCH_CONNECTIONS",
    seconds: "BENCH_SECONDS",
    cases: "BENCH_CASES",
    sides: "BENCH_SIDES",
    portcullis: "BENCH_PORTCULLIS",
    out: "BENCH_OUT",
    cpuProf: "BENCH_CPU_PROF",
  };
  for (const [key, name] of Object.entries(fromEnv)) if (env[name]) given[key] = [name, env[name]];
  const flags = {
    "--rounds": "rounds",
    "--big-mib": "bigMiB",
    "--layers": "layers",
    "--clients": "clients",
    "--connections": "connections",
    "--seconds": "seconds",
    "--cases": "cases",
    "--sides": "sides",
    "--portcullis": "portcullis",
    "--out": "out",
    "--cpu-prof": "cpuProf",
  };
  parseFlags(argv, usage, (flag, value) => {
    if (!(flag in flags)) return false;
    given[flags[flag]] = [flag, value()];
  });

  const opts = { ...DEFAULTS };
  for (const [key, [name, text]] of Object.entries(given)) {
    if (key === "cases") opts.cases = list(name, text, CASES);
    else if (key === "sides") opts.sides = list(name, text, SIDES);
    else if (key === "layers") opts.layers = layerCounts(name, text);
    else if (key === "portcullis" || key === "out" || key === "cpuProf") opts[key] = path.resolve(text);
    else opts[key] = positiveInt(usage, name, text);
  }
  opts.full =
    !opts.cpuProf &&
    opts.rounds >= DEFAULTS.rounds &&
    opts.seconds >= DEFAULTS.seconds &&
    ["bigMiB", "clients", "connections"].every((k) => opts[k] === DEFAULTS[k]) &&
    opts.layers.join() === DEFAULTS.layers.join() &&
    opts.cases.length === CASES.length &&
    opts.sides.length === SIDES.length;
  opts.portcullis ??= path.join(projectRoot, "dist", "cli", "main.js");
  opts.out ??= path.join(projectRoot, "bench", opts.full ? "RESULTS.md" : "results/last-run.md");
  return opts;
}
