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

import fs from "node:fs";
import fsp from "node:fs/promises";
import https from "node:https";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createBlobFile } from "./lib/blob-file.mjs";
import { pullBlob, pushBlob } from "./lib/blob-transfer.mjs";
import { makeTempDir, removeTempDir, runWithCleanup } from "./lib/cleanup.mjs";
import { parseFlags, positiveInt } from "./lib/command-line.mjs";
import { dockerRegistryConfig } from "./lib/docker-registry-config.mjs";
import { freePort } from "./lib/free-port.mjs";
import { expectStatus, request } from "./lib/http-client.mjs";
import { probe, waitReady } from "./lib/readiness.mjs";
import { environment, writeResults } from "./lib/results-file.mjs";
import { max, median } from "./lib/stats.mjs";
import { describeRound, runAlternatingRounds, transferMeasurements } from "./lib/rounds.mjs";
import { fmt, printTable } from "./lib/table.mjs";
import { tail } from "./lib/tail.mjs";
import { spawnTracked, STOP_GRACE_MS } from "./lib/tracked-process.mjs";
import { MiB } from "./lib/units.mjs";

const REPO = "bench/gateway";
const TARGET_RSS_MiB = 150;

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
  parseFlags(argv, usage, (flag, value) => {
    switch (flag) {
      case "--rounds":
        opts.rounds = positiveInt(usage, flag, value());
        break;
      case "--size":
        opts.sizeMiB = positiveInt(usage, flag, value());
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
      default:
        return false;
    }
  });
  return opts;
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

// Environment for Portcullis: no PORTCULLIS_* from the caller's shell, quiet logs, and TMPDIR in a
// temp dir of ours, so the private directory of its registry socket goes away with it even after a kill.
function portcullisEnv(tmp) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("PORTCULLIS_")));
  return { ...env, PORTCULLIS_LOG_LEVEL: "warn", TMPDIR: tmp };
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
  const probe = await request("GET", `${url}/v2/`, { agent });
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
  const answer = await request("GET", tokenUrl, { agent, headers: { Authorization: `Basic ${basic}` } });
  expectStatus(answer, 200, "GET", tokenUrl, { Authorization: "Basic (admin)" });
  return { Authorization: `Bearer ${JSON.parse(answer.body).token}` };
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
    const target = { baseUrl: instance.url, repository: REPO, blob, agent, auth };
    push = await pushBlob({ ...target, contentLength: opts.contentLength });
    pull = await pullBlob(target);
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
    ...transferMeasurements(blob.sizeBytes, push, pull),
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

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  for (const [what, file] of [
    ["docker-registry", opts.dockerRegistry],
    ["nginx", opts.nginx],
  ]) {
    if (!fs.existsSync(file)) throw new Error(`${what} not found at ${file} (apt-get install ${what})`);
  }
  const names = [PORTCULLIS, REFERENCE];

  const { certsDir, agent } = await prepareCertificates(opts);
  const blob = await createBlobFile(opts.sizeMiB, "bench-gw-blob-");

  const results = await runAlternatingRounds(
    names,
    opts.rounds,
    (name) => runRound(name, blob, opts, certsDir, agent),
    (round, name, r) => {
      console.log(`${round} ${name.padEnd(21)} ${describeRound(r)}  server CPU ${fmt(r.cpuSeconds, 2)} s`);
      for (const [proc, m] of Object.entries(r.processes)) {
        if (m.neededSigkill) console.warn(`  note: ${proc} ignored SIGTERM for ${STOP_GRACE_MS} ms and was killed`);
      }
    },
  );
  await removeTempDir(blob.dir);
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
    environment: environment(),
    options: {
      sizeMiB: opts.sizeMiB,
      rounds: opts.rounds,
      patchBody: opts.contentLength ? "content-length" : "chunked",
      reference: path.relative(projectRoot, referenceTemplate),
    },
    digest: blob.digest,
    targetPeakRssMiB: TARGET_RSS_MiB,
    gatewayUnderTarget: underTarget,
    summary,
    ratios,
    rounds: results,
  };
  await writeResults(resultsFile, report);
}

runWithCleanup(main);
