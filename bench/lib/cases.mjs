// What the benchmark measures: the rows of its table, and the sessions that fill them. A session is one fresh
// server (new port, empty storage root) on one side, running the cases that share it: the 512 MiB image is
// pushed once and then pulled, fetched and asked about; every other push gets a session of its own.

import fs from "node:fs";
import path from "node:path";
import { abRate, curlGet, curlPut, skopeoPull, skopeoPush } from "./clients.mjs";
import { expectStatus, request } from "./http-client.mjs";
import { checkAllBlobsArrived, MANIFEST_TYPE, storedBlobs } from "./images.mjs";
import { floor, portcullis, staticCeiling } from "./sides.mjs";
import { MB, MiB } from "./units.mjs";

/**
 * The table's rows in order. `better` says which way is good (for "lower", the ratio is inverted so that
 * > 1 is Portcullis ahead); `only` names the one side a row has.
 */
export function tableRows(opts) {
  const big = `${opts.bigMiB} MiB`;
  const [many1, many2] = opts.layers;
  const rows = [];
  const add = (id, caseId, label, unit, better, extra = {}) => rows.push({ id, caseId, label, unit, better, ...extra });
  add("push-big", "skopeo-big", `skopeo push, 1 layer of ${big}`, "s", "lower");
  add("pull-big", "skopeo-big", `skopeo pull, 1 layer of ${big}`, "s", "lower");
  add("push-many1", "skopeo-100", `skopeo push, ${many1} layers of 256 KiB`, "s", "lower");
  add("pull-many1", "skopeo-100", `skopeo pull, ${many1} layers of 256 KiB`, "s", "lower");
  add("push-many2", "skopeo-200", `skopeo push, ${many2} layers of 256 KiB`, "s", "lower");
  add("pull-many2", "skopeo-200", `skopeo pull, ${many2} layers of 256 KiB`, "s", "lower");
  add("push-typical", "skopeo-typical", "skopeo push, 5 layers (30, 10, 5, 1 MiB, 100 KiB)", "s", "lower");
  add("pull-typical", "skopeo-typical", "skopeo pull, 5 layers (30, 10, 5, 1 MiB, 100 KiB)", "s", "lower");
  add(
    "pull-clients",
    "skopeo-8",
    `${opts.clients} skopeo pulls of the ${big} image at once, aggregate`,
    "MB/s",
    "higher",
  );
  add("curl-get", "curl-get", `curl GET of the ${big} blob`, "MB/s", "higher");
  add("curl-get-ceiling", "curl-get", "curl GET, % of the nginx static-TLS ceiling in the same round", "%", "higher");
  add(
    "curl-put",
    "curl-put",
    `curl monolithic PUT (POST, then PUT ?digest= with the body) of the ${big} blob`,
    "MB/s",
    "higher",
  );
  add("head", "head", `authenticated manifest HEAD, ${opts.connections} keep-alive connections`, "req/s", "higher");
  add("v2", "v2", `authenticated GET /v2/, ${opts.connections} keep-alive connections`, "req/s", "higher");
  add(
    "token-cached",
    "token",
    `token issuance, cached credential, ${opts.connections} connections`,
    "req/s",
    "higher",
    {
      only: portcullis.id,
    },
  );
  add("token-uncached", "token", "token issuance, no credential cache (bcrypt each time)", "req/s", "higher", {
    only: portcullis.id,
  });
  add("rss-push-big", "skopeo-big", `peak RSS, all server processes, during the ${big} push`, "MiB", "lower");
  add(
    "rss-pull-clients",
    "skopeo-8",
    `peak RSS, all server processes, during the ${opts.clients} pulls`,
    "MiB",
    "lower",
  );
  add("rss-max", null, "peak RSS, all server processes, busiest session of a round", "MiB", "lower");
  add("cold-start", null, "cold start: spawn to the first answer on /v2/", "ms", "lower");
  return rows.filter((row) => row.caseId === null || opts.cases.includes(row.caseId));
}

// The cases whose CPU seconds get rows of their own, on both ends of the connection.
const CPU_CASES = ["push-big", "pull-big", "push-many1", "pull-many1", "push-many2", "pull-many2", "pull-clients"];

/**
 * The rows of the second table: CPU seconds each measured operation cost the server's processes (lower is
 * better) and the skopeo clients it served (no ratio: not the server's own figure, but on 2 cores the two
 * compete for the same CPU, so the sum says how close a case runs to the machine's limit).
 */
export function cpuRows(opts) {
  const labels = new Map(tableRows(opts).map((row) => [row.id, row]));
  return CPU_CASES.filter((id) => labels.has(id)).flatMap((id) => {
    const { caseId, label } = labels.get(id);
    return [
      { id: `cpu-server-${id}`, caseId, label: `${label}: server processes`, unit: "CPU s", better: "lower" },
      { id: `cpu-client-${id}`, caseId, label: `${label}: skopeo clients`, unit: "CPU s", better: null },
    ];
  });
}

/** Runs `operation` and records the CPU seconds it cost the server and the clients under `row`'s CPU rows. */
async function counted(instance, ctx, row, operation) {
  const cpu = instance.cpu.phase();
  const startUs = monotonicMicroseconds();
  const result = await operation();
  const spent = cpu.end();
  // On the clock a CPU profile's sample times are on, so bench/profile-summary.mjs can cut out this phase.
  if (instance.profileDir) {
    const line = JSON.stringify({ phase: row, startUs, endUs: monotonicMicroseconds() });
    fs.appendFileSync(path.join(instance.profileDir, "phases.jsonl"), `${line}\n`);
  }
  ctx.record(`cpu-server-${row}`, spent.server);
  ctx.record(`cpu-client-${row}`, spent.clients);
  return result;
}

const monotonicMicroseconds = () => Number(process.hrtime.bigint() / 1000n);

// Each side's GET of the big blob is taken this many times a round (each a sample), and so is the ceiling.
const GETS = 3;

/** One curl GET of `layer` at `url`, checked for its size: `{ mbps, detail }` (detail: the HTTP version). */
async function blobGet(url, layer, options) {
  const got = await curlGet(url, options);
  if (got.bytes !== layer.size) throw new Error(`curl GET ${url} received ${got.bytes} bytes, expected ${layer.size}`);
  return { mbps: got.bytes / MB / got.seconds, detail: `HTTP/${got.httpVersion}` };
}

const target = (instance, setup) => ({ url: instance.url, caDir: setup.tls.caDir, user: setup.user });

async function pushImage(instance, ctx, image, repository) {
  const seconds = await skopeoPush(image, target(instance, ctx.setup), repository);
  // The floor stores nothing to check.
  if (instance.storageRoot)
    checkAllBlobsArrived(image, await storedBlobs(instance.storageRoot), `${ctx.side.label}'s storage`);
  return seconds;
}

// A short unmeasured run first on the same connections count, so every worker has its connections, its
// caches and its users file loaded; what it saw go wrong is noted, not hidden.
async function rate(ctx, url, options) {
  const { connections } = ctx.opts;
  const path = new URL(url).pathname;
  const warm = await abRate(url, { ...options, connections, requests: connections * 8, strict: false });
  if (warm.failed > 0 || warm.non2xx > 0) {
    ctx.warn(`warming up ${path}: ${warm.non2xx} of ${warm.complete} requests answered non-2xx, ${warm.failed} failed`);
  }
  const r = await abRate(url, { ...options, connections, seconds: ctx.opts.seconds });
  if (r.keptAlive < r.complete * 0.9) {
    ctx.warn(`only ${r.keptAlive} of ${r.complete} requests to ${path} were on kept-alive connections`);
  }
  return r.rate;
}

/**
 * An unmeasured push and pull of a small image of 50 layers, to another repository, before a session's
 * measured copies: a server that has run for a while is what operators have, and the first few hundred
 * requests a Node process serves run its code before the JIT has compiled it (about a third more CPU per
 * request). A compiled server (docker-registry) loses nothing by it. Cold start has its own row.
 */
async function warmUp(instance, ctx) {
  await skopeoPush(ctx.images.warmUp, target(instance, ctx.setup), "bench/warm-up");
  await skopeoPull(ctx.images.warmUp, target(instance, ctx.setup), "bench/warm-up");
}

async function bigImageSession(instance, ctx) {
  const { images, opts, setup, record, has } = ctx;
  await warmUp(instance, ctx);
  const image = images.big;
  const repository = "bench/big";
  const phase = instance.memory.phase();
  const pushSeconds = await counted(instance, ctx, "push-big", () => pushImage(instance, ctx, image, repository));
  const pushRss = phase.end();
  if (has("skopeo-big")) {
    record("push-big", pushSeconds);
    record("rss-push-big", pushRss / MiB);
    record(
      "pull-big",
      await counted(instance, ctx, "pull-big", () => skopeoPull(image, target(instance, setup), repository)),
    );
  }
  if (has("skopeo-8")) {
    const pulling = instance.memory.phase();
    const seconds = await counted(instance, ctx, "pull-clients", () =>
      skopeoPull(image, target(instance, setup), repository, opts.clients),
    );
    record("rss-pull-clients", pulling.end() / MiB);
    record("pull-clients", (opts.clients * image.bytes) / MB / seconds);
  }
  const authorization = await instance.authorization(repository);
  if (has("curl-get")) {
    const url = `${instance.url}/v2/${repository}/blobs/${image.biggestLayer.digest}`;
    for (let i = 0; i < GETS; i++) {
      const rate = await blobGet(url, image.biggestLayer, { caFile: setup.tls.caFile, authorization });
      record("curl-get", rate.mbps, rate.detail);
      const ceiling = ctx.roundCeiling();
      if (ceiling) record("curl-get-ceiling", (100 * rate.mbps) / ceiling);
    }
  }
  const auth = `Authorization: ${authorization}`;
  if (has("head")) {
    const url = `${instance.url}/v2/${repository}/manifests/latest`;
    record("head", await rate(ctx, url, { head: true, headers: [auth, `Accept: ${MANIFEST_TYPE}`] }));
  }
  if (has("v2")) record("v2", await rate(ctx, `${instance.url}/v2/`, { headers: [auth] }));
  if (has("token") && instance.tokenUrl) {
    const url = await instance.tokenUrl(`repository:${repository}:pull`);
    record("token-cached", await rate(ctx, url, { headers: [`Authorization: ${instance.basic}`] }));
  }
}

function imageSession(name, rowSuffix) {
  return async (instance, ctx) => {
    const image = ctx.images[name];
    const repository = `bench/${name}`;
    // The floor answers for one image only, and nginx has nothing to warm up.
    if (ctx.side.id !== floor.id) await warmUp(instance, ctx);
    const push = () => pushImage(instance, ctx, image, repository);
    const pull = () => skopeoPull(image, target(instance, ctx.setup), repository);
    ctx.record(`push-${rowSuffix}`, await counted(instance, ctx, `push-${rowSuffix}`, push));
    ctx.record(`pull-${rowSuffix}`, await counted(instance, ctx, `pull-${rowSuffix}`, pull));
  };
}

async function putSession(instance, ctx) {
  const { setup, images, record } = ctx;
  const layer = images.big.biggestLayer;
  const repository = "bench/put";
  const authorization = await instance.authorization(repository);
  const postUrl = `${instance.url}/v2/${repository}/blobs/uploads/`;
  const postHeaders = { Authorization: authorization, "Content-Length": "0" };
  const post = await request("POST", postUrl, { agent: setup.agent(), headers: postHeaders });
  expectStatus(post, 202, "POST", postUrl, { ...postHeaders, Authorization: "(hidden)" });
  const putUrl = new URL(post.headers.location, instance.url);
  putUrl.searchParams.set("digest", layer.digest);
  const put = await curlPut(putUrl.toString(), layer.file, { caFile: setup.tls.caFile, authorization });
  const stored = (await storedBlobs(instance.storageRoot)).get(layer.digest);
  if (put.bytes !== layer.size || stored !== layer.size) {
    throw new Error(
      `curl PUT sent ${put.bytes} bytes, the storage holds ${stored ?? "no"} bytes; expected ${layer.size}`,
    );
  }
  record("curl-put", put.bytes / MB / put.seconds, `HTTP/${put.httpVersion}`);
}

async function uncachedTokenSession(instance, ctx) {
  const url = await instance.tokenUrl("repository:bench/big:pull");
  ctx.record("token-uncached", await rate(ctx, url, { headers: [`Authorization: ${instance.basic}`] }));
}

// The ceiling is the best the machine did in the round: anything else running only ever lowers it.
async function ceilingSession(instance, ctx) {
  const layer = ctx.images.big.biggestLayer;
  const url = `${instance.url}/${layer.digest.slice("sha256:".length)}`;
  let best = 0;
  for (let i = 0; i < GETS; i++) {
    best = Math.max(best, (await blobGet(url, layer, { caFile: ctx.setup.tls.caFile })).mbps);
  }
  ctx.recordCeiling(best);
}

/**
 * The sessions of a round in order, those `opts.cases` needs. `sides` limits a session to some sides (the
 * ceiling and the uncached token are one side's); `variant` is passed to the side's start; `coldStart`
 * says whether its start counts as a cold-start sample (Portcullis's usual config on a bench side).
 */
export function plannedSessions(opts) {
  const needs = (...cases) => cases.some((c) => opts.cases.includes(c));
  // The floor speaks only the part of the protocol a skopeo push and pull of one image use.
  const servers = opts.sides.filter((id) => id !== floor.id);
  const sessions = [
    { id: "ceiling", when: needs("curl-get"), sides: [staticCeiling.id], run: ceilingSession, static: true },
    {
      id: "big",
      when: needs("skopeo-big", "skopeo-8", "curl-get", "head", "v2", "token"),
      sides: servers,
      run: bigImageSession,
    },
    { id: "layers100", when: needs("skopeo-100"), image: "layers100", run: imageSession("layers100", "many1") },
    { id: "layers200", when: needs("skopeo-200"), image: "layers200", run: imageSession("layers200", "many2") },
    { id: "typical", when: needs("skopeo-typical"), image: "typical", run: imageSession("typical", "typical") },
    { id: "put", when: needs("curl-put"), sides: servers, run: putSession },
    {
      id: "token-uncached",
      when: needs("token") && opts.sides.includes(portcullis.id),
      sides: [portcullis.id],
      variant: { credentialCacheSeconds: 0 },
      run: uncachedTokenSession,
    },
  ];
  return sessions
    .filter((s) => s.when)
    .map((s) => ({ coldStart: !s.static && !s.variant, sides: s.sides ?? opts.sides, ...s }));
}
