#!/usr/bin/env node
// Where Portcullis's CPU went in each measured phase of a profiled bench run (`npm run bench -- --cpu-prof DIR`):
// for every server start under DIR, the self time of its processes' samples inside each phase, by kind of
// code (Node's C++ and OpenSSL, Node's own JavaScript by module, dependencies, Portcullis by directory) and
// the functions that cost the most.
//
//   node bench/profile-summary.mjs DIR [--top N]

import fs from "node:fs";
import path from "node:path";

const usage =
  "usage: node bench/profile-summary.mjs DIR [--top N]   (DIR: what --cpu-prof was given, or one start in it)";

function parseArgs(argv) {
  let dir = null;
  let top = 12;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--top") top = Number(argv[++i]);
    else if (argv[i] === "--help" || argv[i] === "-h") exit(usage, 0);
    else if (dir === null) dir = argv[i];
    else exit(`unexpected argument ${argv[i]}\n${usage}`, 2);
  }
  if (!dir) exit(usage, 2);
  if (!Number.isInteger(top) || top < 1) exit(`--top takes a positive whole number\n${usage}`, 2);
  if (!fs.existsSync(dir)) exit(`${dir} does not exist: give the dir the bench's --cpu-prof wrote to`, 2);
  return { dir, top };
}

function exit(message, code) {
  (code === 0 ? console.log : console.error)(message);
  process.exit(code);
}

/** What kind of code a profile node is, as a row of the summary. */
function kindOf({ functionName, url }) {
  if (!url) {
    if (functionName === "(garbage collector)") return "V8: garbage collector";
    if (functionName === "(program)") return "V8/libuv outside JavaScript (program)";
    return "Node's C++ called from JavaScript (TLS, sockets, fs, crypto)";
  }
  if (url.startsWith("node:")) {
    const module = url.slice("node:".length);
    if (/^(_http|http)/.test(module)) return "node: http";
    if (/^(_tls|tls|internal\/tls)/.test(module)) return "node: tls";
    if (/^(net|internal\/net|internal\/stream_base)/.test(module)) return "node: net";
    if (/^internal\/streams|^stream/.test(module)) return "node: streams";
    if (/^internal\/fs|^fs/.test(module)) return "node: fs";
    if (/^internal\/(child_process|cluster)/.test(module)) return "node: child_process (IPC)";
    return "node: other";
  }
  const dependency = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (dependency) return `dependency: ${dependency[1]}`;
  const own = /\/dist\/([^/]+)(?:\/([^/]+))?/.exec(url);
  if (own) return `portcullis: ${own[2] && !own[2].endsWith(".js") ? `${own[1]}/${own[2]}` : own[1]}`;
  return "other";
}

function functionLabel({ functionName, url, lineNumber }) {
  const where = url ? `${url.replace(/^file:\/\/.*\/(dist|node_modules)\//, "$1/")}:${lineNumber + 1}` : "native";
  return `${functionName || "(anonymous)"} ${where}`;
}

/** Each sample as `{ node, atUs, selfUs }`: its time is until the next sample (the last gets none). */
function samplesOf(profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const out = [];
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    const next = profile.timeDeltas[i + 1] ?? 0;
    out.push({ node: nodes.get(profile.samples[i]), atUs: at, selfUs: next });
  }
  return out;
}

function readPhases(dir) {
  const file = path.join(dir, "phases.jsonl");
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

const ms = (us) => (us / 1000).toFixed(0).padStart(7);

function summarize(profiles, window, top) {
  const byKind = new Map();
  const byFunction = new Map();
  const byProcess = [];
  let busy = 0;
  for (const { name, samples } of profiles) {
    let own = 0;
    for (const { node, atUs, selfUs } of samples) {
      if (atUs < window.startUs || atUs >= window.endUs || node.callFrame.functionName === "(idle)") continue;
      own += selfUs;
      const kind = kindOf(node.callFrame);
      byKind.set(kind, (byKind.get(kind) ?? 0) + selfUs);
      const label = functionLabel(node.callFrame);
      byFunction.set(label, (byFunction.get(label) ?? 0) + selfUs);
    }
    byProcess.push(`${name} ${ms(own).trim()} ms`);
    busy += own;
  }
  const wall = window.endUs - window.startUs;
  const lines = [
    `  ${(wall / 1e6).toFixed(2)} s of wall time; busy (not idle) on the JavaScript threads: ${ms(busy).trim()} ms (${byProcess.join(", ")})`,
  ];
  const share = (us) => `${ms(us)} ms ${((100 * us) / (busy || 1)).toFixed(1).padStart(5)} %`;
  lines.push("  by kind of code:");
  for (const [kind, us] of [...byKind].sort((a, b) => b[1] - a[1])) lines.push(`    ${share(us)}  ${kind}`);
  lines.push(`  the ${top} functions with the most self time:`);
  for (const [label, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`    ${share(us)}  ${label}`);
  return lines.join("\n");
}

function summarizeStart(dir, top) {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  if (files.length === 0) return `${path.basename(dir)}: no .cpuprofile (did the server exit cleanly?)`;
  const profiles = files
    .map((file) => {
      const profile = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8"));
      // CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile: the pid tells the processes apart.
      return { name: `pid ${file.split(".")[3]}`, startTime: profile.startTime, samples: samplesOf(profile), profile };
    })
    .sort((a, b) => a.startTime - b.startTime);
  profiles[0].name += " (first process)";
  const phases = readPhases(dir);
  const whole = {
    phase: "whole run",
    startUs: Math.min(...profiles.map((p) => p.profile.startTime)),
    endUs: Math.max(...profiles.map((p) => p.profile.endTime)),
  };
  return [
    `${path.basename(dir)}: ${profiles.length} process(es)`,
    ...(phases.length > 0 ? phases : [whole]).map((w) => `- ${w.phase}\n${summarize(profiles, w, top)}`),
  ].join("\n");
}

const { dir, top } = parseArgs(process.argv.slice(2));
const starts = fs.readdirSync(dir).some((f) => f.endsWith(".cpuprofile"))
  ? [dir]
  : fs
      .readdirSync(dir)
      .map((d) => path.join(dir, d))
      .filter((d) => fs.statSync(d).isDirectory())
      .sort();
console.log(starts.map((start) => summarizeStart(start, top)).join("\n\n"));
