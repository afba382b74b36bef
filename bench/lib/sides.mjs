// The servers under test, started fresh (a new port, an empty storage root) for every session of cases:
// reference A, docker-registry with its own TLS; reference B, the same registry in plain HTTP behind nginx;
// Portcullis; and nginx serving a static file, the ceiling. Each start resolves to an instance:
//   { url, storageRoot, coldStartMs, memory, cpu, authorization(repository), stop() }
// where coldStartMs runs from spawn to the first HTTP answer on /v2/ (through nginx: the registry's answer), and
// stalledAtStart counts the connections the server took before that but left unanswered.

import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { makeTempDir, removeTempDir } from "./cleanup.mjs";
import { dockerRegistryConfig } from "./docker-registry-config.mjs";
import { freePort } from "./free-port.mjs";
import { expectStatus, request } from "./http-client.mjs";
import { cpuMeter } from "./cpu.mjs";
import { memorySampler } from "./memory.mjs";
import { floorRegistryServer, nginxMainConfig, registryProxyServer, staticFileServer } from "./nginx.mjs";
import { waitForAnswer, waitForOutput } from "./readiness.mjs";
import { tail } from "./tail.mjs";
import { spawnTracked } from "./tracked-process.mjs";

const DOCKER_REGISTRY = "docker-registry";
const NGINX = "nginx";

const basic = (user) => `Basic ${Buffer.from(`${user.name}:${user.password}`).toString("base64")}`;

/**
 * Starts `procs()` (spawned in one go), waits until `answered(status)` for GET `url`/v2/, and wraps them as an
 * instance. On a failed start everything started is stopped again.
 */
async function launch({ setup, url, storageRoot, dirs, spawnAll, answered, authorization, extra = {} }) {
  const since = performance.now();
  const procs = spawnAll();
  const memory = memorySampler(() => procs.map((p) => p.pid));
  const stop = async () => {
    const lifetimePeakBytes = memory.lifetimePeak();
    const processCount = memory.processCount();
    const processPeaks = memory.processPeaks();
    const exited = memory.exitedSoFar();
    const exact = memory.exact();
    memory.stop();
    const notes = [];
    if (exited.length > 0) notes.push(`processes exited while it ran: ${exited.join(", ")}`);
    let outlived = false;
    for (const proc of [...procs].reverse()) {
      const { killed, leftovers, ended } = await proc.stop();
      if (killed) notes.push(`${proc.name} ignored SIGTERM and was killed`);
      if (leftovers)
        notes.push(`processes of ${proc.name}'s group outlived it (it ended with ${ended}) and were killed`);
      outlived ||= leftovers;
    }
    // The servers' own words on why (a worker's crash, its replacement) are in their output.
    const exitedOutput =
      exited.length > 0 || outlived
        ? procs.map((p) => `--- ${p.name} ---\n${tail(p.output(), 6000)}`).join("\n")
        : null;
    for (const dir of dirs) await removeTempDir(dir);
    if (!exact) notes.push("peak RSS could not be reset per phase (not root?): phase peaks are lifetime peaks");
    return { lifetimePeakBytes, processCount, processPeaks, notes, exitedOutput };
  };
  let ready;
  try {
    // setup.agent() is null until there is a CA to trust (Portcullis makes it on its first start).
    ready = await waitForAnswer(procs, `${url}/v2/`, { agent: setup.agent, accept: answered, since });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    storageRoot,
    coldStartMs: ready.ms,
    stalledAtStart: ready.stalled,
    memory,
    cpu: cpuMeter(() => procs.map((p) => p.pid)),
    processes: procs,
    authorization,
    stop,
    ...extra,
  };
}

const nginxArgs = (conf) => ["-e", "stderr", "-c", path.join(conf, "nginx.conf"), "-p", conf, "-g", "daemon off;"];

// nginx's workers run as an unprivileged user when its master is root: they must reach its temp dirs.
async function nginxPrefix(dir) {
  const conf = path.join(dir, "nginx");
  await fsp.mkdir(conf, { mode: 0o755 });
  await fsp.chmod(dir, 0o755);
  return conf;
}

export const registryTls = {
  id: "registry-tls",
  label: "A: docker-registry, own TLS",
  auth: "htpasswd (bcrypt) on every request, Basic",
  async start(setup) {
    const port = await freePort();
    const dir = await makeTempDir("bench-registry-tls-");
    const root = path.join(dir, "root");
    const config = path.join(dir, "config.yml");
    await fsp.writeFile(config, dockerRegistryConfig(root, port, { tls: setup.tls, htpasswd: setup.htpasswd }));
    return launch({
      setup,
      url: `https://127.0.0.1:${port}`,
      storageRoot: root,
      dirs: [dir],
      spawnAll: () => [spawnTracked(DOCKER_REGISTRY, DOCKER_REGISTRY, ["serve", config])],
      answered: (status) => status === 401,
      authorization: async () => basic(setup.user),
    });
  },
};

export const nginxRegistry = {
  id: "nginx-registry",
  label: "B: nginx TLS → docker-registry",
  auth: "htpasswd (bcrypt) on every request, Basic, checked by the registry",
  async start(setup) {
    const registryPort = await freePort();
    const port = await freePort();
    const dir = await makeTempDir("bench-nginx-registry-");
    const root = path.join(dir, "root");
    const config = path.join(dir, "config.yml");
    await fsp.writeFile(config, dockerRegistryConfig(root, registryPort, { htpasswd: setup.htpasswd }));
    const conf = await nginxPrefix(dir);
    const server = registryProxyServer({ port, upstream: `127.0.0.1:${registryPort}`, tls: setup.tls });
    await fsp.writeFile(path.join(conf, "nginx.conf"), nginxMainConfig(conf, server));
    return launch({
      setup,
      url: `https://127.0.0.1:${port}`,
      storageRoot: root,
      dirs: [dir],
      spawnAll: () => [
        spawnTracked(DOCKER_REGISTRY, DOCKER_REGISTRY, ["serve", config]),
        spawnTracked(NGINX, NGINX, nginxArgs(conf), { detached: true }),
      ],
      // nginx answers 502 until the registry listens.
      answered: (status) => status === 401,
      authorization: async () => basic(setup.user),
    });
  },
};

/** The environment of Portcullis: no PORTCULLIS_* of the caller's shell; temp files in its own dir. */
function portcullisEnv(tmp) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("PORTCULLIS_")));
  return { ...env, TMPDIR: tmp };
}

/**
 * Portcullis's config in the benchmark: its defaults, plus the bench user's htpasswd file, warn-level logs
 * (the references log no requests either), and request budgets no benchmark reaches (the defaults, 600 token
 * requests a minute per address and 20000 requests a minute per account, would turn the rate cases into 429s).
 */
function portcullisConfig({ htpasswd, credentialCacheSeconds }) {
  const budget = "{ points: 1000000000, durationSeconds: 60 }";
  return [
    "auth:",
    "  htpasswd:",
    `    file: ${JSON.stringify(htpasswd)}`,
    ...(credentialCacheSeconds === undefined ? [] : [`  credentialCacheSeconds: ${credentialCacheSeconds}`]),
    "rateLimits:",
    `  tokenRequestsPerIp: ${budget}`,
    `  requestsPerAccount: ${budget}`,
    "log:",
    "  level: warn",
    "",
  ].join("\n");
}

/** The /token URL for `scope` (`repository:NAME:ACTIONS`), with the service Portcullis names in its challenge. */
async function portcullisTokenUrl(url, agent, scope) {
  const challenge = await request("GET", `${url}/v2/`, { agent });
  const service = /service="([^"]+)"/.exec(challenge.headers["www-authenticate"] ?? "")?.[1];
  if (challenge.status !== 401 || !service) {
    throw new Error(`GET ${url}/v2/ → ${challenge.status} with no Bearer challenge naming a service`);
  }
  return `${url}/token?${new URLSearchParams({ service, scope })}`;
}

/** Bearer authorization for `repository` (pull, push) from Portcullis's /token, as the bench user. */
async function portcullisToken(url, setup, repository) {
  const agent = setup.agent();
  const tokenUrl = await portcullisTokenUrl(url, agent, `repository:${repository}:pull,push`);
  const headers = { Authorization: basic(setup.user) };
  const answer = await request("GET", tokenUrl, { agent, headers });
  expectStatus(answer, 200, "GET", tokenUrl, { Authorization: "Basic (bench user)" });
  return `Bearer ${JSON.parse(answer.body).token}`;
}

/** The node flags the CLI's shebang (`#!/usr/bin/env -S node …`) gives it, so it runs as its bin does. */
function binFlags(cli) {
  const first = fs.readFileSync(cli, "utf8").split("\n", 1)[0] ?? "";
  const match = /^#!\/usr\/bin\/env -S node(?: (.*))?$/.exec(first);
  return match?.[1] ? match[1].split(" ") : [];
}

export const portcullis = {
  id: "portcullis",
  label: "Portcullis",
  auth: "bearer token from /token (Basic, bcrypt, credential cache)",
  /**
   * `variant.credentialCacheSeconds` sets that config key. Under `setup.cpuProf` every process of this start
   * writes its CPU profile on exit to a dir of its own there, named `profileName`.
   */
  async start(setup, variant = {}, { profileName = "first-start" } = {}) {
    if (!fs.existsSync(setup.dist)) throw new Error(`${setup.dist} is missing; run npm run build first`);
    const port = await freePort();
    const dir = await makeTempDir("bench-portcullis-");
    const data = path.join(dir, "data");
    const config = path.join(dir, "portcullis.yaml");
    await fsp.writeFile(config, portcullisConfig({ htpasswd: setup.htpasswd, ...variant }));
    const url = `https://127.0.0.1:${port}`;
    const profileDir = setup.cpuProf ? path.join(setup.cpuProf, profileName) : null;
    if (profileDir) await fsp.mkdir(profileDir, { recursive: true });
    const profileFlags = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
    const args = [setup.cli, "serve", "--config", config, "--data", data, "--certs", setup.certsDir];
    const instance = await launch({
      setup,
      url,
      storageRoot: data,
      dirs: [dir],
      // The node binary itself, not npm or a shell, so the process tree is the server's; in a group of its
      // own, so its workers go with it. Its working dir is an empty one: no portcullis.yaml lying around.
      spawnAll: () => [
        spawnTracked(
          "portcullis",
          process.execPath,
          [...binFlags(setup.dist), ...profileFlags, ...args, "--listen", `127.0.0.1:${port}`],
          {
            cwd: dir,
            env: portcullisEnv(dir),
            detached: true,
          },
        ),
      ],
      answered: () => true,
      authorization: (repository) => portcullisToken(url, setup, repository),
      extra: {
        tokenUrl: (scope) => portcullisTokenUrl(url, setup.agent(), scope),
        basic: basic(setup.user),
        profileDir,
      },
    });
    // Its first process answers before its workers are up; the cases measure all of them serving.
    try {
      await waitForOutput(instance.processes[0], "Portcullis is serving HTTPS on:");
    } catch (error) {
      await instance.stop();
      throw error;
    }
    return instance;
  },
};

/** A server on `port` that stores nothing and asks for no credentials; `dirs` are removed when it stops. */
function launchOpen(setup, port, dirs, spawn) {
  return launch({
    setup,
    url: `https://127.0.0.1:${port}`,
    storageRoot: null,
    dirs,
    spawnAll: () => [spawn()],
    answered: () => true,
    authorization: async () => null,
  });
}

/** nginx in a temp prefix of its own, serving `serverBlock(port)`. */
async function startNginxServer(setup, prefix, serverBlock) {
  const port = await freePort();
  const dir = await makeTempDir(prefix);
  const conf = await nginxPrefix(dir);
  await fsp.writeFile(path.join(conf, "nginx.conf"), nginxMainConfig(conf, serverBlock(port)));
  return launchOpen(setup, port, [dir], () => spawnTracked(NGINX, NGINX, nginxArgs(conf), { detached: true }));
}

export const staticCeiling = {
  id: "ceiling",
  label: "nginx static file, TLS 1.3",
  /** Serves the files of `root` (world-readable: nginx's workers are not root). */
  start: (setup, { root }) =>
    startNginxServer(setup, "bench-ceiling-", (port) => staticFileServer({ port, root, tls: setup.tls })),
};

/** Not a reference (no ratio is taken against it): how fast skopeo itself goes on this machine. */
export const floor = {
  id: "floor",
  label: "floor: nginx answering from config and files",
  auth: "none, and nothing stored (see floorRegistryServer)",
  reference: false,
  /** Answers for the image in `root` (its `dir:` layout). */
  start: (setup, { root }) =>
    startNginxServer(setup, "bench-floor-", (port) => floorRegistryServer({ port, root, tls: setup.tls })),
};

/** The floor's protocol answered by a bare Node HTTPS server (bench/node-floor.mjs; not a side of the bench). */
export const nodeFloor = {
  id: "node-floor",
  label: "floor: bare Node HTTPS answering from files",
  auth: "none, and nothing stored (see node-floor-server.mjs)",
  reference: false,
  async start(setup, { root }) {
    const port = await freePort();
    const server = path.join(path.dirname(fileURLToPath(import.meta.url)), "node-floor-server.mjs");
    const args = [server, String(port), setup.tls.cert, setup.tls.key, root];
    return launchOpen(setup, port, [], () => spawnTracked("node", process.execPath, args, { detached: true }));
  },
};

export const benchSides = [registryTls, nginxRegistry, portcullis, floor];
