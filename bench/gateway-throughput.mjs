// Blob push/pull throughput over HTTPS and gateway memory: the Portcullis gateway (TLS, http-proxy,
// built-in registry on its unix socket) side by side with the reference setup operators run today,
// docker-registry behind nginx with TLS (nginx-compat/docker-registry-behind-nginx.conf). Plain Node,
// no dependencies.
//
//   node bench/gateway-throughput.mjs [--rounds N] [--size MiB] [--content-length]
//                                     [--portcullis PATH] [--docker-registry PATH] [--nginx PATH]
//
// Both sides use the same certificate and key (Portcullis's certs/server.crt, made once at the start),
// so the TLS work is the same. Each round starts every server fresh (new port, new empty storage) in
// alternating order, pushes one blob with the streamed OCI flow (POST, one PATCH, PUT ?digest=), pulls it
// back checking the digest, and samples memory from /proc/PID/status. Results go to stdout and to
// bench/results/gateway-throughput.json.

import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const MiB = 1024 * 1024;
const REPO = "bench/gateway";
const TARGET_RSS_MiB = 150;
const RSS_POLL_MS = 100;
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const IDLE_TIMEOUT_MS = 120_000;

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const defaultPortcullisCli = path.join(projectRoot, "dist", "cli", "main.js");
const referenceTemplate = path.join(projectRoot, "nginx-compat", "docker-registry-behind-nginx.conf");
const resultsFile = path.join(projectRoot, "bench", "results", "gateway-throughput.json");

const PORTCULLIS = "portcullis";
const REFERENCE = "docker-registry+nginx";

const usage = `usage: node bench/gateway-throughput.mjs [options]
  --rounds N              rounds per side (default 3)
  --size MiB              blob size in MiB (default 1024)
  --content-length        send Content-Length on the PATCH (default: chunked, as docker does)
  --portcullis PATH       Portcullis CLI script (default dist/cli/main.js)
  --docker-registry PATH  docker-registry binary (default /usr/bin/docker-registry)
  --nginx PATH            nginx binary (default /usr/sbin/nginx)`;

function parseArgs(argv) {
  const opts = {
    rounds: 3,
    sizeMiB: 1024,
    contentLength: false,
    portcullis: defaultPortcullisCli,
    dockerRegistry: "/usr/bin/docker-registry",
    nginx: "/usr/sbin/nginx",
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
      case "--content-length":
        opts.contentLength = true;
        break;
      case "--portcullis":
        opts.portcullis = path.resolve(value());
        break;
      case "--docker-registry":
        opts.dockerRegistry = value();
        break;
      case "--nginx":
        opts.nginx = value();
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

// Everything started or created is tracked here so that any exit path can undo it. nginx runs in a
// process group of its own (detached) and is killed as a group, so its worker goes with its master.
const children = new Map(); // child → { group: boolean }
const tempDirs = new Set();

function killChild(child, signal) {
  if (children.get(child)?.group) {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // the whole group is gone already
    }
  }
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
}

function cleanupSync() {
  for (const child of children.keys()) killChild(child, "SIGKILL");
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

const clockTicks = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

// User + system CPU seconds a process has used so far (fields 14 and 15 of /proc/PID/stat).
function readCpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return null;
  }
}

function childPids(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function tail(text, max = 4000) {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

function fillTemplate(template, values) {
  const filled = template.replace(/@([A-Z_]+)@/g, (whole, name) => values[name] ?? whole);
  const left = [...new Set(filled.match(/@[A-Z_]+@/g) ?? [])];
  if (left.length > 0) throw new Error(`${referenceTemplate}: no value for ${left.join(", ")}`);
  return filled;
}

// nginx.conf around the server block: pid, temp files and logs in the temp dir, never the system's.
function nginxMainConfig(prefix) {
  return [
    "worker_processes 1;",
    `pid ${prefix}/nginx.pid;`,
    "events { worker_connections 256; }",
    "http {",
    "  access_log off;",
    `  client_body_temp_path ${prefix}/client_body;`,
    `  proxy_temp_path ${prefix}/proxy;`,
    `  fastcgi_temp_path ${prefix}/fastcgi;`,
    `  uwsgi_temp_path ${prefix}/uwsgi;`,
    `  scgi_temp_path ${prefix}/scgi;`,
    `  include ${prefix}/server.conf;`,
    "}",
    "",
  ].join("\n");
}

function dockerRegistryConfig(root, port) {
  return [
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
}

// Environment for Portcullis: no PORTCULLIS_* from the caller's shell, quiet logs, and TMPDIR in a
// temp dir of ours, so the private directory of its registry socket goes away with it even after a kill.
function portcullisEnv(tmp) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("PORTCULLIS_")));
  return { ...env, PORTCULLIS_LOG_LEVEL: "warn", TMPDIR: tmp };
}

/** A spawned process whose output is kept (the tail) and whose memory is sampled from /proc. */
function spawnTracked(name, cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  children.set(child, { group: options.detached === true });
  let output = "";
  const keep = (data) => {
    output = tail(output + data.toString(), 64 * 1024);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const spawnError = new Promise((_, reject) => child.once("error", reject));
  spawnError.catch(() => {});
  const pids = () => [child.pid, ...(options.detached ? childPids(child.pid) : [])];
  let maxRss = 0;
  const hwm = new Map();
  const cpuAtStart = new Map();
  const cpuLast = new Map();
  const sample = () => {
    let rss = 0;
    for (const pid of pids()) {
      const s = readProcStatus(pid);
      if (s?.rss) rss += s.rss;
      if (s?.hwm) hwm.set(pid, Math.max(hwm.get(pid) ?? 0, s.hwm));
      const cpu = readCpuSeconds(pid);
      if (cpu !== null) {
        if (!cpuAtStart.has(pid)) cpuAtStart.set(pid, cpu);
        cpuLast.set(pid, cpu);
      }
    }
    maxRss = Math.max(maxRss, rss);
  };
  let poller = null;
  return {
    name,
    child,
    describe: () => `${name} (${cmd} ${args.join(" ")})`,
    output: () => output,
    exited,
    spawnError,
    alive: () => child.exitCode === null && child.signalCode === null,
    startSampling() {
      sample();
      poller = setInterval(sample, RSS_POLL_MS);
    },
    async stop() {
      if (poller) clearInterval(poller);
      sample();
      let killed = false;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => {
          killed = true;
          killChild(child, "SIGKILL");
        }, STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      // Whatever of an nginx group outlived its master.
      if (options.detached) killChild(child, "SIGKILL");
      children.delete(child);
      const peaks = [...hwm.values()];
      let cpuSeconds = 0;
      for (const [pid, last] of cpuLast) cpuSeconds += last - cpuAtStart.get(pid);
      return {
        // CPU used from the first sample (server ready, before the push) to the last (after the pull).
        cpuSeconds: Math.round(cpuSeconds * 100) / 100,
        // Sum of each process's own peak: an upper bound when there are several (nginx master + worker).
        peakRssBytes: peaks.length ? peaks.reduce((a, b) => a + b, 0) : null,
        maxPolledRssBytes: maxRss,
        killed,
      };
    },
  };
}

// Resolves to the HTTP status of a GET, or null while nothing answers (the error is kept for the report).
let lastProbeError = null;
function probe(url, agent) {
  return new Promise((resolve) => {
    const get = url.startsWith("https:") ? https.get : http.get;
    const req = get(url, { agent: agent ?? false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.setTimeout(2000, () => req.destroy(new Error(`GET ${url}: no answer within 2 s`)));
    req.on("error", (err) => {
      lastProbeError = `${url}: ${err.message}`;
      resolve(null);
    });
  });
}

async function waitReady(proc, check) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const result = await Promise.race([
      proc.exited.then((e) => ({ exited: e })),
      proc.spawnError,
      check().then((ready) => ({ ready })),
    ]);
    if (result.exited) {
      const { code, signal } = result.exited;
      throw new Error(
        `${proc.describe()} exited (code ${code}, signal ${signal}) before it was ready:\n${tail(proc.output())}`,
      );
    }
    if (result.ready) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${proc.describe()} not ready after ${READY_TIMEOUT_MS} ms (last probe: ${lastProbeError}):\n${tail(proc.output())}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startPortcullis(opts, certsDir, agent) {
  if (!fs.existsSync(opts.portcullis)) throw new Error(`${opts.portcullis} is missing; run npm run build first`);
  const port = await freePort();
  const data = await makeTempDir("bench-gw-portcullis-data-");
  const home = await makeTempDir("bench-gw-portcullis-home-");
  // The node binary itself, not npm or a shell, so that the PID is the server's. The working directory
  // is an empty one, so no portcullis.yaml lying around is read.
  const proc = spawnTracked(
    PORTCULLIS,
    process.execPath,
    [opts.portcullis, "serve", "--listen", `127.0.0.1:${port}`, "--data", data, "--certs", certsDir],
    { cwd: home, env: portcullisEnv(home) },
  );
  const url = `https://127.0.0.1:${port}`;
  try {
    await waitReady(proc, async () => {
      // On the very first start the CA appears only once Portcullis has made it.
      const trusting = agent ?? (await agentTrusting(certsDir));
      return trusting !== null && (await probe(`${url}/v2/`, trusting)) !== null;
    });
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return {
    url,
    processes: [proc],
    authorization: () => portcullisAuthorization(url, certsDir, agent),
    async stop() {
      const memory = { [proc.name]: await proc.stop() };
      await removeTempDir(data);
      await removeTempDir(home);
      return memory;
    },
  };
}

async function startReference(opts, certsDir, agent) {
  const registryPort = await freePort();
  const nginxPort = await freePort();
  const root = await makeTempDir("bench-gw-registry-root-");
  const conf = await makeTempDir("bench-gw-reference-conf-");
  // The nginx worker runs as an unprivileged user when the master is root; it must reach its temp dirs.
  await fsp.chmod(conf, 0o755);
  const registryConfig = path.join(conf, "registry.yml");
  await fsp.writeFile(registryConfig, dockerRegistryConfig(root, registryPort));
  const serverBlock = fillTemplate(await fsp.readFile(referenceTemplate, "utf8"), {
    LISTEN: `127.0.0.1:${nginxPort}`,
    SERVER_NAME: "127.0.0.1",
    CERT: path.join(certsDir, "server.crt"),
    KEY: path.join(certsDir, "server.key"),
    UPSTREAM: `127.0.0.1:${registryPort}`,
  });
  await fsp.writeFile(path.join(conf, "server.conf"), serverBlock);
  await fsp.writeFile(path.join(conf, "nginx.conf"), nginxMainConfig(conf));

  const started = [];
  const stopAll = async () => {
    const memory = {};
    for (const proc of started.reverse()) memory[proc.name] = await proc.stop();
    await removeTempDir(root);
    await removeTempDir(conf);
    return memory;
  };
  try {
    const registry = spawnTracked("docker-registry", opts.dockerRegistry, ["serve", registryConfig]);
    started.push(registry);
    await waitReady(registry, async () => (await probe(`http://127.0.0.1:${registryPort}/v2/`)) === 200);
    const nginx = spawnTracked(
      "nginx",
      opts.nginx,
      ["-c", path.join(conf, "nginx.conf"), "-p", conf, "-g", "daemon off; error_log stderr;"],
      { detached: true },
    );
    started.push(nginx);
    await waitReady(nginx, async () => (await probe(`https://127.0.0.1:${nginxPort}/v2/`, agent)) === 200);
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    url: `https://127.0.0.1:${nginxPort}`,
    processes: started,
    authorization: async () => ({}),
    stop: stopAll,
  };
}

// Headers for pushing to and pulling from REPO. With token authentication on, Portcullis challenges
// every /v2/ request: get a token (outside the measured time) as the admin user made at the first start,
// whose password is in certs/admin-password. Without it, GET /v2/ answers 200 and no header is needed.
async function portcullisAuthorization(url, certsDir, agent) {
  const probe = await request(agent, "GET", `${url}/v2/`);
  if (probe.status === 200) return {};
  const challenge = probe.headers["www-authenticate"] ?? "";
  const service = /service="([^"]+)"/.exec(challenge)?.[1];
  const password = await fsp.readFile(path.join(certsDir, "admin-password"), "utf8").catch(() => null);
  if (probe.status !== 401 || !service || password === null) {
    throw new Error(
      `GET ${url}/v2/ → ${probe.status} (${challenge || "no challenge"}), and no token can be had` +
        (password === null ? ` (no ${path.join(certsDir, "admin-password")})` : ""),
    );
  }
  const query = new URLSearchParams({ service, scope: `repository:${REPO}:pull,push` });
  const basic = Buffer.from(`admin:${password.trim()}`).toString("base64");
  const tokenUrl = `${url}/token?${query}`;
  const answer = await request(agent, "GET", tokenUrl, { headers: { Authorization: `Basic ${basic}` } });
  expectStatus(answer, 200, "GET", tokenUrl, { Authorization: "Basic (admin)" });
  return { Authorization: `Bearer ${JSON.parse(answer.body).token}` };
}

// One request with an optional streamed body. The response body is returned only for small
// responses (error reporting); callers that stream the body pass onResponse instead.
function request(agent, method, url, { headers = {}, body, onResponse } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, agent });
    const record = { method, url, requestHeaders: headers };
    let tls = null;
    req.on("socket", (socket) =>
      socket.once("secureConnect", () => {
        tls = { protocol: socket.getProtocol(), cipher: socket.getCipher()?.name ?? null };
      }),
    );
    req.on("error", (err) => reject(Object.assign(err, { request: record })));
    req.on("response", (res) => {
      if (onResponse && res.statusCode >= 200 && res.statusCode < 300) {
        onResponse(res).then(
          (value) => resolve({ status: res.statusCode, headers: res.headers, value, tls }),
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
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString("utf8"), tls }),
      );
      res.on("error", reject);
    });
    req.setTimeout(IDLE_TIMEOUT_MS, () =>
      req.destroy(new Error(`${method} ${url}: no progress for ${IDLE_TIMEOUT_MS / 1000} s`)),
    );
    if (body) {
      pipeline(body, req).catch((err) => reject(Object.assign(err, { request: record })));
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

// The next URL of the upload. It must stay on the URL the client used: a Location pointing elsewhere
// (the registry behind the proxy, say) would have the rest of the upload measure another path.
function location(res, base, method, url) {
  const value = res.headers.location;
  if (!value) throw new Error(`${method} ${url} → ${res.status} without a Location header`);
  const next = new URL(value, base);
  if (next.origin !== new URL(base).origin) {
    throw new Error(`${method} ${url} → ${res.status} with Location ${value}, which leaves ${base}`);
  }
  return next.toString();
}

async function pushBlob(agent, auth, baseUrl, file, sizeBytes, digest, opts) {
  const started = performance.now();

  const postUrl = `${baseUrl}/v2/${REPO}/blobs/uploads/`;
  const postHeaders = { "Content-Length": "0", ...auth };
  const post = await request(agent, "POST", postUrl, { headers: postHeaders });
  expectStatus(post, 202, "POST", postUrl, postHeaders);
  const patchUrl = location(post, baseUrl, "POST", postUrl);

  const patchStarted = performance.now();
  const patchHeaders = { "Content-Type": "application/octet-stream", ...auth };
  if (opts.contentLength) patchHeaders["Content-Length"] = String(sizeBytes);
  const patch = await request(agent, "PATCH", patchUrl, {
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
  const putHeaders = { "Content-Length": "0", ...auth };
  const put = await request(agent, "PUT", putUrl.toString(), { headers: putHeaders });
  expectStatus(put, 201, "PUT", putUrl.toString(), putHeaders);
  if (put.headers["docker-content-digest"] && put.headers["docker-content-digest"] !== digest) {
    throw new Error(`PUT answered Docker-Content-Digest ${put.headers["docker-content-digest"]}, pushed ${digest}`);
  }

  const ended = performance.now();
  return {
    seconds: (ended - started) / 1000,
    patchSeconds: (putStarted - patchStarted) / 1000,
    putSeconds: (ended - putStarted) / 1000,
    tls: patch.tls,
  };
}

async function pullBlob(agent, auth, baseUrl, sizeBytes, digest) {
  const started = performance.now();
  const url = `${baseUrl}/v2/${REPO}/blobs/${digest}`;
  const res = await request(agent, "GET", url, {
    headers: auth,
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
  expectStatus(res, 200, "GET", url, auth);
  const seconds = (performance.now() - started) / 1000;
  if (res.value.length !== sizeBytes || res.value.digest !== digest) {
    throw new Error(
      `GET ${url} returned ${res.value.length} bytes with ${res.value.digest}, pushed ${sizeBytes} bytes with ${digest}`,
    );
  }
  return seconds;
}

const sides = {
  [PORTCULLIS]: startPortcullis,
  [REFERENCE]: startReference,
};

const mib = (bytes) => (bytes === null || bytes === undefined ? null : bytes / MiB);

async function runRound(name, blob, opts, certsDir, agent) {
  const instance = await sides[name](opts, certsDir, agent);
  let auth, push, pull, memory;
  try {
    // The token (a bcrypt check) is fetched before sampling starts, so CPU time is the transfer's.
    auth = await instance.authorization();
    for (const proc of instance.processes) proc.startSampling();
    push = await pushBlob(agent, auth, instance.url, blob.file, blob.sizeBytes, blob.digest, opts);
    pull = await pullBlob(agent, auth, instance.url, blob.sizeBytes, blob.digest);
    const dead = instance.processes.find((proc) => !proc.alive());
    if (dead) throw new Error(`${dead.name} died during the round:\n${tail(dead.output())}`);
  } catch (err) {
    for (const proc of instance.processes) {
      const out = tail(proc.output(), 3000);
      if (out.trim()) err.message += `\n--- ${proc.name} output (tail) ---\n${out}`;
    }
    throw err;
  } finally {
    memory = await instance.stop();
  }
  const mibps = (s) => blob.sizeBytes / MiB / s;
  const processes = Object.fromEntries(
    Object.entries(memory).map(([proc, m]) => [
      proc,
      {
        peakRssMiB: mib(m.peakRssBytes),
        maxPolledRssMiB: mib(m.maxPolledRssBytes),
        cpuSeconds: m.cpuSeconds,
        neededSigkill: m.killed,
      },
    ]),
  );
  const all = Object.values(processes);
  return {
    pushSeconds: push.seconds,
    patchSeconds: push.patchSeconds,
    putSeconds: push.putSeconds,
    pullSeconds: pull,
    pushMiBps: mibps(push.seconds),
    pullMiBps: mibps(pull),
    tls: push.tls,
    bearerToken: auth.Authorization !== undefined,
    // The side's server processes together (for the reference: docker-registry, nginx master and worker).
    peakRssMiB: all.some((p) => p.peakRssMiB === null) ? null : all.reduce((a, p) => a + p.peakRssMiB, 0),
    cpuSeconds: all.reduce((a, p) => a + p.cpuSeconds, 0),
    maxPolledRssMiB: all.reduce((a, p) => a + p.maxPolledRssMiB, 0),
    processes,
  };
}

// An agent that trusts Portcullis's CA (certs/ca.crt) and nothing else, or null while there is none.
async function agentTrusting(certsDir) {
  const ca = await fsp.readFile(path.join(certsDir, "ca.crt"), "utf8").catch(() => null);
  return ca === null ? null : new https.Agent({ ca, keepAlive: false });
}

// Portcullis makes its CA and server certificate on first start. Starting it once before the rounds
// gives both sides the same certificate and key (nginx serves them too) and keeps key generation out of
// every measurement.
async function prepareCertificates(opts) {
  const certsDir = await makeTempDir("bench-gw-certs-");
  const instance = await startPortcullis(opts, certsDir, null);
  await instance.stop();
  for (const file of ["ca.crt", "server.crt", "server.key"]) {
    if (!fs.existsSync(path.join(certsDir, file)))
      throw new Error(`portcullis serve did not write ${file} in ${certsDir}`);
  }
  return { certsDir, agent: await agentTrusting(certsDir) };
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
  const perProcess = {};
  for (const proc of Object.keys(rounds[0].processes)) {
    perProcess[proc] = {
      peakRssMiB: max(rounds.map((r) => r.processes[proc].peakRssMiB)),
      maxPolledRssMiB: max(rounds.map((r) => r.processes[proc].maxPolledRssMiB)),
      medianCpuSeconds: median(rounds.map((r) => r.processes[proc].cpuSeconds)),
    };
  }
  return {
    medianPushMiBps: median(rounds.map((r) => r.pushMiBps)),
    medianPullMiBps: median(rounds.map((r) => r.pullMiBps)),
    peakRssMiB: max(rounds.map((r) => r.peakRssMiB)),
    maxPolledRssMiB: max(rounds.map((r) => r.maxPolledRssMiB)),
    medianCpuSeconds: median(rounds.map((r) => r.cpuSeconds)),
    processes: perProcess,
    tls: rounds[0].tls,
    bearerToken: rounds[0].bearerToken,
  };
}

function fmt(value, digits = 1) {
  return value === null || value === undefined ? "-" : value.toFixed(digits);
}

function printTable(rows) {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => String(row[col]).length)));
  const line = (row) => row.map((cell, col) => String(cell)[col ? "padStart" : "padEnd"](widths[col])).join("  ");
  console.log(line(rows[0]));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows.slice(1)) console.log(line(row));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  for (const [what, file] of [
    ["docker-registry", opts.dockerRegistry],
    ["nginx", opts.nginx],
  ]) {
    if (!fs.existsSync(file)) throw new Error(`${what} not found at ${file} (apt-get install ${what})`);
  }
  const names = [PORTCULLIS, REFERENCE];
  const sizeBytes = opts.sizeMiB * MiB;

  const { certsDir, agent } = await prepareCertificates(opts);
  const dataDir = await makeTempDir("bench-gw-blob-");
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
      const r = await runRound(name, blob, opts, certsDir, agent);
      results[name].push(r);
      console.log(
        `round ${round + 1}/${opts.rounds} ${name.padEnd(21)} push ${fmt(r.pushMiBps).padStart(7)} MiB/s` +
          ` (PATCH ${fmt(r.patchSeconds, 2)} s, PUT ${fmt(r.putSeconds, 2)} s)` +
          `  pull ${fmt(r.pullMiBps).padStart(7)} MiB/s  peak RSS ${fmt(r.peakRssMiB)} MiB` +
          ` (max polled ${fmt(r.maxPolledRssMiB)} MiB)  server CPU ${fmt(r.cpuSeconds, 2)} s`,
      );
      for (const [proc, m] of Object.entries(r.processes)) {
        if (m.neededSigkill) console.warn(`  note: ${proc} ignored SIGTERM for ${STOP_GRACE_MS} ms and was killed`);
      }
    }
  }
  await removeTempDir(dataDir);
  await removeTempDir(certsDir);

  const summary = Object.fromEntries(names.map((n) => [n, summarize(results[n])]));
  const ratio = (a, b) => (a === null || b === null || b === 0 ? null : a / b);
  const ours = summary[PORTCULLIS];
  const theirs = summary[REFERENCE];
  const ratios = {
    push: ratio(ours.medianPushMiBps, theirs.medianPushMiBps),
    pull: ratio(ours.medianPullMiBps, theirs.medianPullMiBps),
  };

  console.log(
    `\n${opts.sizeMiB} MiB blob over HTTPS, ${opts.rounds} round(s), PATCH ${opts.contentLength ? "with Content-Length" : "chunked"}` +
      `; TLS ${ours.tls?.protocol} ${ours.tls?.cipher} (portcullis), ${theirs.tls?.protocol} ${theirs.tls?.cipher} (nginx)` +
      `\nportcullis ${ours.bearerToken ? "checked a bearer token on every request" : "asked for no token"}; the reference has no auth`,
  );
  const rows = [
    [
      "side",
      "push MiB/s (median)",
      "pull MiB/s (median)",
      "peak RSS MiB",
      "max polled RSS MiB",
      "server CPU s (median)",
    ],
  ];
  for (const name of names) {
    const s = summary[name];
    rows.push([
      name,
      fmt(s.medianPushMiBps),
      fmt(s.medianPullMiBps),
      fmt(s.peakRssMiB),
      fmt(s.maxPolledRssMiB),
      fmt(s.medianCpuSeconds, 2),
    ]);
  }
  rows.push([`${PORTCULLIS}/reference`, fmt(ratios.push, 2), fmt(ratios.pull, 2), "", "", ""]);
  printTable(rows);
  console.log(
    `reference memory: ${Object.entries(theirs.processes)
      .map(([proc, m]) => `${proc} peak ${fmt(m.peakRssMiB)} MiB, CPU ${fmt(m.medianCpuSeconds, 2)} s`)
      .join(", ")} (nginx: master + worker)`,
  );

  const gateway = ours.processes[PORTCULLIS];
  const underTarget =
    gateway.peakRssMiB !== null && gateway.peakRssMiB < TARGET_RSS_MiB && gateway.maxPolledRssMiB < TARGET_RSS_MiB;
  console.log(
    `\nportcullis gateway process peak RSS ${fmt(gateway.peakRssMiB)} MiB (VmHWM), max polled ${fmt(gateway.maxPolledRssMiB)} MiB:` +
      ` ${underTarget ? "under" : "NOT under"} the ${TARGET_RSS_MiB} MiB target`,
  );

  const report = {
    benchmark: "gateway-throughput",
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
      patchBody: opts.contentLength ? "content-length" : "chunked",
      reference: path.relative(projectRoot, referenceTemplate),
    },
    digest,
    targetPeakRssMiB: TARGET_RSS_MiB,
    gatewayUnderTarget: underTarget,
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
