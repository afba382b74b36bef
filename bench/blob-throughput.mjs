// Blob push/pull throughput and server memory: the built-in registry side by side with
// docker-registry (CNCF distribution 2.x). Plain Node, no dependencies.
//
//   node bench/blob-throughput.mjs [--rounds N] [--size MiB] [--only portcullis|docker-registry]
//                                  [--content-length] [--portcullis PATH] [--docker-registry PATH]
//
// Each round starts every server fresh (new port, new empty root), pushes one blob with the
// streamed OCI flow (POST, one PATCH, PUT ?digest=), pulls it back checking the digest, and
// samples the server's memory from /proc/PID/status. Results go to stdout and to
// bench/results/blob-throughput.json.

import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const MiB = 1024 * 1024;
const REPO = "bench/blob";
const TARGET_RSS_MiB = 150;
const RSS_POLL_MS = 100;
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const IDLE_TIMEOUT_MS = 120_000;

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const defaultPortcullisCli = path.join(projectRoot, "dist", "cli", "main.js");
const resultsFile = path.join(projectRoot, "bench", "results", "blob-throughput.json");

const usage = `usage: node bench/blob-throughput.mjs [options]
  --rounds N              rounds per server (default 3)
  --size MiB              blob size in MiB (default 1024)
  --only NAME             run one server only: portcullis | docker-registry
  --content-length        send Content-Length on the PATCH (default: chunked, as docker does)
  --portcullis PATH       Portcullis CLI script (default dist/cli/main.js)
  --docker-registry PATH  docker-registry binary (default /usr/bin/docker-registry)`;

function parseArgs(argv) {
  const opts = {
    rounds: 3,
    sizeMiB: 1024,
    only: null,
    contentLength: false,
    portcullis: defaultPortcullisCli,
    dockerRegistry: "/usr/bin/docker-registry",
  };
  const positiveInt = (flag, value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) usageError(`${flag} needs a positive integer, got ${value}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? arg.split(/=(.*)/s) : [arg];
    const value = () => inline ?? argv[++i] ?? usageError(`${flag} needs a value`);
    switch (flag) {
      case "--rounds":
        opts.rounds = positiveInt(flag, value());
        break;
      case "--size":
        opts.sizeMiB = positiveInt(flag, value());
        break;
      case "--only":
        opts.only = value();
        if (!["portcullis", "docker-registry"].includes(opts.only)) {
          usageError(`--only takes portcullis or docker-registry, got ${opts.only}`);
        }
        break;
      case "--content-length":
        opts.contentLength = true;
        break;
      case "--portcullis":
        opts.portcullis = path.resolve(value());
        break;
      case "--docker-registry":
        opts.dockerRegistry = value();
        break;
      case "-h":
      case "--help":
        console.log(usage);
        process.exit(0);
        break;
      default:
        usageError(`unknown option ${arg}`);
    }
  }
  return opts;
}

function usageError(message) {
  console.error(`${message}\n${usage}`);
  process.exit(2);
}

// Everything started or created is tracked here so that any exit path can undo it.
const children = new Set();
const tempDirs = new Set();

function cleanupSync() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  children.clear();
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

process.on("exit", cleanupSync);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping servers and removing temp dirs`);
    cleanupSync();
    process.exit(128 + os.constants.signals[signal]);
  });
}

async function makeTempDir(prefix) {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

async function removeTempDir(dir) {
  await fsp.rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

async function generateBlob(file, sizeBytes) {
  const chunkSize = 4 * MiB;
  const hash = createHash("sha256");
  const random = promisify(randomBytes);
  async function* chunks() {
    for (let left = sizeBytes; left > 0; left -= chunkSize) {
      const chunk = await random(Math.min(chunkSize, left));
      hash.update(chunk);
      yield chunk;
    }
  }
  await pipeline(chunks, fs.createWriteStream(file));
  return `sha256:${hash.digest("hex")}`;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const servers = {
  portcullis: {
    name: "portcullis",
    async command({ port, root }, opts) {
      if (!fs.existsSync(opts.portcullis)) {
        throw new Error(`${opts.portcullis} is missing; run npm run build first`);
      }
      // The node binary itself, not npm or a shell, so that the PID is the server's.
      return [
        process.execPath,
        [opts.portcullis, "registry", "--listen", `127.0.0.1:${port}`, "--root", root],
      ];
    },
  },
  "docker-registry": {
    name: "docker-registry",
    async command({ port, root, configDir }, opts) {
      const config = [
        "version: 0.1",
        "log:",
        "  level: error",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${JSON.stringify(root)}`,
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        `  addr: 127.0.0.1:${port}`,
        `  secret: ${randomBytes(16).toString("hex")}`,
        "",
      ].join("\n");
      const configFile = path.join(configDir, "config.yml");
      await fsp.writeFile(configFile, config);
      return [opts.dockerRegistry, ["serve", configFile]];
    },
  },
};

function readProcStatus(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kB = (key) => {
      const match = status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"));
      return match ? Number(match[1]) * 1024 : null;
    };
    return { rss: kB("VmRSS"), hwm: kB("VmHWM") };
  } catch {
    return null;
  }
}

function tail(text, max = 4000) {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

async function startServer(server, opts) {
  const port = await freePort();
  const root = await makeTempDir(`bench-${server.name}-root-`);
  const configDir = await makeTempDir(`bench-${server.name}-conf-`);
  const [cmd, args] = await server.command({ port, root, configDir }, opts);
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: process.env });
  children.add(child);
  let output = "";
  const keep = (data) => {
    output = tail(output + data.toString(), 64 * 1024);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const spawnError = new Promise((_, reject) => child.once("error", reject));

  const url = `http://127.0.0.1:${port}`;
  const describe = () => `${server.name} (${cmd} ${args.join(" ")})`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const result = await Promise.race([
      exited.then((e) => ({ exited: e })),
      spawnError,
      probe(`${url}/v2/`).then((status) => ({ status })),
    ]);
    if (result.exited) {
      const { code, signal } = result.exited;
      throw new Error(
        `${describe()} exited (code ${code}, signal ${signal}) before listening:\n${tail(output)}`,
      );
    }
    if (result.status) break;
    if (Date.now() > deadline) {
      throw new Error(`${describe()} not answering GET /v2/ after ${READY_TIMEOUT_MS} ms:\n${tail(output)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  let maxRss = 0;
  const sample = () => {
    const s = readProcStatus(child.pid);
    if (s?.rss) maxRss = Math.max(maxRss, s.rss);
  };
  sample();
  const poller = setInterval(sample, RSS_POLL_MS);

  return {
    url,
    pid: child.pid,
    output: () => output,
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop() {
      clearInterval(poller);
      sample();
      const final = readProcStatus(child.pid);
      const stopping = performance.now();
      let killed = false;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => {
          killed = true;
          child.kill("SIGKILL");
        }, STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      const stopSeconds = (performance.now() - stopping) / 1000;
      children.delete(child);
      await removeTempDir(root);
      await removeTempDir(configDir);
      return { peakRssBytes: final?.hwm ?? null, maxPolledRssBytes: maxRss, stopSeconds, killed };
    },
  };
}

// Resolves to the HTTP status of a GET, or null while nothing is listening.
function probe(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.setTimeout(2000, () => req.destroy());
    req.on("error", () => resolve(null));
  });
}

// One request with an optional streamed body. The response body is returned only for small
// responses (error reporting); callers that stream the body pass onResponse instead.
function request(method, url, { headers = {}, body, onResponse } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false });
    const record = { method, url, requestHeaders: headers };
    req.on("error", (err) => reject(Object.assign(err, { request: record })));
    req.on("response", (res) => {
      if (onResponse && res.statusCode >= 200 && res.statusCode < 300) {
        onResponse(res).then(
          (value) => resolve({ status: res.statusCode, headers: res.headers, value }),
          (err) => reject(Object.assign(err, { request: record })),
        );
        return;
      }
      const parts = [];
      let length = 0;
      res.on("data", (chunk) => {
        if (length < 64 * 1024) parts.push(chunk);
        length += chunk.length;
      });
      res.on("end", () =>
        resolve({
          status: res.statusCode,
          headers: res.headers,
          body: Buffer.concat(parts).toString("utf8"),
        }),
      );
      res.on("error", reject);
    });
    req.setTimeout(IDLE_TIMEOUT_MS, () =>
      req.destroy(new Error(`${method} ${url}: no progress for ${IDLE_TIMEOUT_MS / 1000} s`)),
    );
    if (body) {
      // A server that answers early (an error status) may reset the connection under the body;
      // give its response a moment to arrive so the report shows it rather than EPIPE.
      let raw = "";
      req.on("socket", (socket) =>
        socket.on("data", (chunk) => {
          if (raw.length < 8192) raw += chunk.toString("latin1");
        }),
      );
      pipeline(body, req).catch((err) => {
        setTimeout(() => {
          if (raw)
            err.message += `\nthe server had sent (raw, before the connection failed):\n${tail(raw, 8192)}`;
          else err.message += "\nnothing was received from the server before the connection failed";
          reject(Object.assign(err, { request: record }));
        }, 1000);
      });
    } else {
      req.end();
    }
  });
}

function expectStatus(res, expected, method, url, requestHeaders) {
  if (res.status === expected) return;
  const headers = Object.entries(res.headers)
    .map(([k, v]) => `  ${k}: ${v}`)
    .join("\n");
  const reqHeaders = Object.entries(requestHeaders)
    .map(([k, v]) => `  ${k}: ${v}`)
    .join("\n");
  throw new Error(
    `${method} ${url} → ${res.status}, expected ${expected}\n` +
      `request headers:\n${reqHeaders || "  (none)"}\n` +
      `response headers:\n${headers}\nresponse body:\n${tail(res.body ?? "", 2000)}`,
  );
}

function location(res, base, method, url) {
  const value = res.headers.location;
  if (!value) throw new Error(`${method} ${url} → ${res.status} without a Location header`);
  return new URL(value, base).toString();
}

async function pushBlob(baseUrl, file, sizeBytes, digest, opts) {
  const started = performance.now();

  const postUrl = `${baseUrl}/v2/${REPO}/blobs/uploads/`;
  const postHeaders = { "Content-Length": "0" };
  const post = await request("POST", postUrl, { headers: postHeaders });
  expectStatus(post, 202, "POST", postUrl, postHeaders);
  const patchUrl = location(post, baseUrl, "POST", postUrl);

  const patchStarted = performance.now();
  const patchHeaders = { "Content-Type": "application/octet-stream" };
  if (opts.contentLength) patchHeaders["Content-Length"] = String(sizeBytes);
  const patch = await request("PATCH", patchUrl, {
    headers: patchHeaders,
    body: fs.createReadStream(file, { highWaterMark: MiB }),
  });
  expectStatus(patch, 202, "PATCH", patchUrl, patchHeaders);
  const range = patch.headers.range;
  if (range !== `0-${sizeBytes - 1}`) {
    console.warn(`  note: PATCH answered Range: ${range ?? "(none)"}, expected 0-${sizeBytes - 1}`);
  }
  const putBase = location(patch, baseUrl, "PATCH", patchUrl);

  const putStarted = performance.now();
  const putUrl = new URL(putBase);
  putUrl.searchParams.set("digest", digest);
  const putHeaders = { "Content-Length": "0" };
  const put = await request("PUT", putUrl.toString(), { headers: putHeaders });
  expectStatus(put, 201, "PUT", putUrl.toString(), putHeaders);
  if (put.headers["docker-content-digest"] && put.headers["docker-content-digest"] !== digest) {
    throw new Error(
      `PUT answered Docker-Content-Digest ${put.headers["docker-content-digest"]}, pushed ${digest}`,
    );
  }

  const ended = performance.now();
  // The phases show where the time goes: the PATCH is the transfer, the PUT is the server's
  // digest check and commit (a server that fsyncs or re-reads the data pays for it here).
  return {
    seconds: (ended - started) / 1000,
    patchSeconds: (putStarted - patchStarted) / 1000,
    putSeconds: (ended - putStarted) / 1000,
  };
}

async function pullBlob(baseUrl, sizeBytes, digest) {
  const started = performance.now();
  const url = `${baseUrl}/v2/${REPO}/blobs/${digest}`;
  const res = await request("GET", url, {
    onResponse: async (body) => {
      const hash = createHash("sha256");
      let length = 0;
      await pipeline(
        body,
        new Writable({
          highWaterMark: MiB,
          write(chunk, _enc, done) {
            hash.update(chunk);
            length += chunk.length;
            done();
          },
        }),
      );
      return { digest: `sha256:${hash.digest("hex")}`, length };
    },
  });
  expectStatus(res, 200, "GET", url, {});
  const seconds = (performance.now() - started) / 1000;
  if (res.value.length !== sizeBytes || res.value.digest !== digest) {
    throw new Error(
      `GET ${url} returned ${res.value.length} bytes with ${res.value.digest}, pushed ${sizeBytes} bytes with ${digest}`,
    );
  }
  return seconds;
}

async function runRound(server, blob, opts) {
  const instance = await startServer(server, opts);
  let push, pull, memory;
  try {
    push = await pushBlob(instance.url, blob.file, blob.sizeBytes, blob.digest, opts);
    pull = await pullBlob(instance.url, blob.sizeBytes, blob.digest);
    if (!instance.alive())
      throw new Error(`${server.name} died during the round:\n${tail(instance.output())}`);
  } catch (err) {
    const out = tail(instance.output(), 3000);
    if (out.trim()) err.message += `\n--- ${server.name} output (tail) ---\n${out}`;
    throw err;
  } finally {
    memory = await instance.stop();
  }
  const mibps = (s) => blob.sizeBytes / MiB / s;
  return {
    pushSeconds: push.seconds,
    patchSeconds: push.patchSeconds,
    putSeconds: push.putSeconds,
    pullSeconds: pull,
    pushMiBps: mibps(push.seconds),
    pullMiBps: mibps(pull),
    peakRssMiB: memory.peakRssBytes === null ? null : memory.peakRssBytes / MiB,
    maxPolledRssMiB: memory.maxPolledRssBytes / MiB,
    stopSeconds: memory.stopSeconds,
    neededSigkill: memory.killed,
  };
}

function median(values) {
  const sorted = values.filter((v) => v !== null).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function max(values) {
  const present = values.filter((v) => v !== null);
  return present.length ? Math.max(...present) : null;
}

function summarize(rounds) {
  return {
    medianPushMiBps: median(rounds.map((r) => r.pushMiBps)),
    medianPullMiBps: median(rounds.map((r) => r.pullMiBps)),
    peakRssMiB: max(rounds.map((r) => r.peakRssMiB)),
    maxPolledRssMiB: max(rounds.map((r) => r.maxPolledRssMiB)),
  };
}

function fmt(value, digits = 1) {
  return value === null || value === undefined ? "-" : value.toFixed(digits);
}

function printTable(rows) {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => String(row[col]).length)));
  const line = (row) =>
    row.map((cell, col) => String(cell)[col ? "padStart" : "padEnd"](widths[col])).join("  ");
  console.log(line(rows[0]));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows.slice(1)) console.log(line(row));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const names = opts.only ? [opts.only] : ["portcullis", "docker-registry"];
  const sizeBytes = opts.sizeMiB * MiB;

  const dataDir = await makeTempDir("bench-blob-data-");
  const file = path.join(dataDir, "blob.bin");
  process.stdout.write(`generating a ${opts.sizeMiB} MiB blob in ${dataDir} … `);
  const genStarted = performance.now();
  const digest = await generateBlob(file, sizeBytes);
  console.log(`${digest} (${((performance.now() - genStarted) / 1000).toFixed(1)} s)`);
  const blob = { file, sizeBytes, digest };

  const results = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < opts.rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const r = await runRound(servers[name], blob, opts);
      results[name].push(r);
      console.log(
        `round ${round + 1}/${opts.rounds} ${name.padEnd(15)} push ${fmt(r.pushMiBps).padStart(7)} MiB/s` +
          ` (PATCH ${fmt(r.patchSeconds, 2)} s, PUT ${fmt(r.putSeconds, 2)} s)` +
          `  pull ${fmt(r.pullMiBps).padStart(7)} MiB/s  peak RSS ${fmt(r.peakRssMiB)} MiB` +
          ` (max polled ${fmt(r.maxPolledRssMiB)} MiB)`,
      );
      if (r.neededSigkill)
        console.warn(`  note: ${name} ignored SIGTERM for ${STOP_GRACE_MS} ms and was killed`);
    }
  }
  await removeTempDir(dataDir);

  const summary = Object.fromEntries(names.map((n) => [n, summarize(results[n])]));
  const ratio = (a, b) => (a === null || b === null || b === 0 ? null : a / b);
  const ratios =
    summary.portcullis && summary["docker-registry"]
      ? {
          push: ratio(summary.portcullis.medianPushMiBps, summary["docker-registry"].medianPushMiBps),
          pull: ratio(summary.portcullis.medianPullMiBps, summary["docker-registry"].medianPullMiBps),
          peakRss: ratio(summary.portcullis.peakRssMiB, summary["docker-registry"].peakRssMiB),
        }
      : null;

  console.log(
    `\n${opts.sizeMiB} MiB blob, ${opts.rounds} round(s), PATCH ${opts.contentLength ? "with Content-Length" : "chunked"}`,
  );
  const rows = [
    ["server", "push MiB/s (median)", "pull MiB/s (median)", "peak RSS MiB", "max polled RSS MiB"],
  ];
  for (const name of names) {
    const s = summary[name];
    rows.push([
      name,
      fmt(s.medianPushMiBps),
      fmt(s.medianPullMiBps),
      fmt(s.peakRssMiB),
      fmt(s.maxPolledRssMiB),
    ]);
  }
  if (ratios)
    rows.push([
      "portcullis/docker-registry",
      fmt(ratios.push, 2),
      fmt(ratios.pull, 2),
      fmt(ratios.peakRss, 2),
      "",
    ]);
  printTable(rows);

  let underTarget = null;
  if (summary.portcullis) {
    underTarget = summary.portcullis.peakRssMiB !== null && summary.portcullis.peakRssMiB < TARGET_RSS_MiB;
    console.log(
      `\nportcullis peak RSS ${fmt(summary.portcullis.peakRssMiB)} MiB: ` +
        `${underTarget ? "under" : "NOT under"} the ${TARGET_RSS_MiB} MiB target`,
    );
  }

  const report = {
    benchmark: "blob-throughput",
    date: new Date().toISOString(),
    environment: {
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? null,
      memoryMiB: Math.round(os.totalmem() / MiB),
    },
    options: {
      sizeMiB: opts.sizeMiB,
      rounds: opts.rounds,
      only: opts.only,
      patchBody: opts.contentLength ? "content-length" : "chunked",
    },
    digest,
    targetPeakRssMiB: TARGET_RSS_MiB,
    portcullisUnderTarget: underTarget,
    summary,
    ratios,
    rounds: results,
  };
  await fsp.mkdir(path.dirname(resultsFile), { recursive: true });
  await fsp.writeFile(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), resultsFile) || resultsFile}`);
}

main().catch((err) => {
  console.error(`\nbenchmark failed: ${err.stack ?? err}`);
  if (err.request) console.error(`while sending ${err.request.method} ${err.request.url}`);
  cleanupSync();
  process.exit(1);
});
