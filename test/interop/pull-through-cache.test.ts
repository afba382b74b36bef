import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createWriteStream, readFileSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { get as httpsGet } from "node:https";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import { auditDir } from "../../src/audit/audit-log.js";
import { readRecords } from "../../src/audit/reader.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  requestsSeen,
  startDockerRegistry,
  type AccessLogEntry,
  type DockerRegistry,
} from "../support/docker-registry.js";
import { MEDIA_TYPES, buildDockerSchema2Image, contentSummary, sha256, type BuiltImage } from "../support/images.js";
import type { PortcullisServe } from "../support/portcullis-serve.js";
import { childPids } from "../support/processes.js";
import { fetchToken, tagsListAs } from "../support/registry-token.js";
import { startServeWithConfig, type ServeWithConfig } from "../support/serve-with-config.js";
import { copyImage, copyOverTls, pullOverTls, type TlsClientOptions } from "../support/skopeo.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

/**
 * A schema2 image in a skopeo `dir:` whose one layer is `size` random bytes, written in chunks so it is
 * never whole in memory (nothing between skopeo and the registries unpacks a layer).
 */
async function buildLargeImage(dir: string, size: number): Promise<BuiltImage> {
  await mkdir(dir, { recursive: true });
  const temp = join(dir, "layer.tmp");
  const hash = createHash("sha256");
  const out = createWriteStream(temp);
  for (let written = 0; written < size; written += 4 * 1024 * 1024) {
    const chunk = randomBytes(Math.min(4 * 1024 * 1024, size - written));
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, "drain");
  }
  out.end();
  await finished(out);
  const layerDigest = `sha256:${hash.digest("hex")}`;
  const config = Buffer.from(
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [layerDigest] } }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.dockerManifest,
      config: { mediaType: MEDIA_TYPES.dockerConfig, digest: sha256(config), size: config.length },
      layers: [{ mediaType: MEDIA_TYPES.dockerLayer, digest: layerDigest, size }],
    }),
  );
  await rename(temp, join(dir, layerDigest.slice("sha256:".length)));
  await writeFile(join(dir, sha256(config).slice("sha256:".length)), config);
  await writeFile(join(dir, "manifest.json"), manifest);
  await writeFile(join(dir, "version"), "Directory Transport Version: 1.1\n");
  const descriptor = { mediaType: MEDIA_TYPES.dockerManifest, digest: sha256(manifest), size: manifest.length };
  return {
    path: dir,
    reference: `dir:${dir}`,
    descriptor,
    manifests: new Map([[descriptor.digest, manifest]]),
    blobs: new Map([
      [sha256(config), config.length],
      [layerDigest, size],
    ]),
  };
}

/** The largest VmRSS, in MiB, that `portcullis serve` or one of its workers has reached while `task` ran. */
async function peakRssMiB(pid: number, task: Promise<unknown>): Promise<number> {
  const rss = (p: number) => {
    try {
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0) / 1024;
    } catch {
      return 0;
    }
  };
  const tree = () => [pid, ...childPids(pid)];
  let peak = 0;
  let running = true;
  const done = task.finally(() => (running = false));
  while (running) {
    peak = Math.max(peak, ...tree().map(rss));
    await Promise.race([done.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 50))]);
  }
  await done;
  return peak;
}

const forRepository = (requests: AccessLogEntry[], repository: string) =>
  requests.filter((request) => request.path.startsWith(`/v2/${repository}/`));

describe("a pull-through cache of a docker-registry, pulled from with skopeo over TLS", () => {
  let work: TempDir;
  let upstream: DockerRegistry;
  let upstreamStopped = false;
  let portcullis: ServeWithConfig;
  let serve: PortcullisServe;
  let client: TlsClientOptions;
  let gateway: string;
  let small: BuiltImage;
  let wide: BuiltImage;
  const user = "frank";
  const password = randomBytes(12).toString("base64url");

  beforeAll(async () => {
    requireTool("docker-registry", "docker-registry");
    requireTool("skopeo", "skopeo");
    work = await makeTempDir("pull-through-cache-");
    upstream = await startDockerRegistry();
    small = await buildDockerSchema2Image(join(work.path, "small"), { layerSizes: [256 * 1024, 64 * 1024, 8 * 1024] });
    wide = await buildDockerSchema2Image(join(work.path, "wide"), {
      layerSizes: [2 * 1024 * 1024, 1024 * 1024, 512 * 1024, 32 * 1024],
    });
    await copyImage(small.reference, `docker://${upstream.hostPort}/library/alpine:3`);
    await copyImage(wide.reference, `docker://${upstream.hostPort}/team/tool:1`);
    portcullis = await startServeWithConfig(work.path, {
      upstreams: { hub: { url: upstream.url } },
      mirrors: [
        { prefix: "hub/", upstream: "hub" },
        { prefix: "fresh/", upstream: "hub", tagTtlSeconds: 0 },
      ],
      policies: [{ account: user, repository: "*", actions: ["*"] }],
    });
    ({ serve, registry: gateway } = portcullis);
    await portcullis.addUser({ user, password });
    client = portcullis.clientAs({ user, password });
    await mkdir(join(work.path, "out"));
  });

  afterAll(async () => {
    if (!upstreamStopped) await upstream?.stop();
    await portcullis?.stop();
    await work?.stop();
  });

  const tagsOf = (repository: string) => tagsListAs(serve, user, password, repository);

  const pull = async (repository: string, out: string) =>
    contentSummary(await pullOverTls(`docker://${gateway}/${repository}`, join(work.path, "out", out), client));

  it("fetches an image from the upstream on its first pull, and serves the second pull without asking the upstream", async () => {
    const before = forRepository(await requestsSeen(upstream), "library/alpine").length;

    expect(await pull("hub/library/alpine:3", "first")).toEqual(contentSummary(small));
    const afterFirst = forRepository(await requestsSeen(upstream), "library/alpine");
    expect(afterFirst.length).toBeGreaterThan(before);
    expect(await pull("hub/library/alpine:3", "second")).toEqual(contentSummary(small));

    expect(forRepository(await requestsSeen(upstream), "library/alpine")).toEqual(afterFirst);
  });

  it("records pulls through the cache in the audit log, as pulls of pushed images are", () => {
    const pulls = [...readRecords(auditDir(serve.dataDir))]
      .flatMap((entry) => (entry.record ? [entry.record] : []))
      .filter((record) => record.action === "pull" && record.target?.repository === "hub/library/alpine")
      .map((record) => [record.result, record.target?.tag, record.target?.digest]);

    expect(pulls.length).toBeGreaterThanOrEqual(2);
    expect(new Set(pulls.map((entry) => entry.join(" ")))).toEqual(new Set([`success 3 ${small.descriptor.digest}`]));
  });

  it("records each manifest and blob the first pull fetched as one cache fill, naming the upstream and the user", () => {
    const fills = [...readRecords(auditDir(serve.dataDir))]
      .flatMap((entry) => (entry.record ? [entry.record] : []))
      .filter((record) => record.action === "cache-fill" && record.target?.repository === "hub/library/alpine");

    expect(fills.map((record) => record.target?.digest).sort()).toEqual(
      [small.descriptor.digest, ...small.blobs.keys()].sort(),
    );
    for (const record of fills) {
      expect(record).toMatchObject({ result: "success", detail: { upstream: "hub" } });
      expect(record.actor.name).toBe(fills[0]?.actor.name);
    }
    expect(fills.map((record) => record.target?.size).sort()).toEqual(
      [small.descriptor.size, ...small.blobs.values()].sort(),
    );
  });

  it("fetches each blob from the upstream exactly once when ten clients pull an uncached image at once", async () => {
    const pulls = Array.from({ length: 10 }, (_, i) => pull("hub/team/tool:1", `concurrent-${i}`));

    for (const pulled of await Promise.all(pulls)) expect(pulled).toEqual(contentSummary(wide));
    const gets = forRepository(await requestsSeen(upstream), "team/tool").filter(
      (request) => request.method === "GET" && request.path.includes("/blobs/"),
    );
    const perBlob = [...wide.blobs.keys()].map((digest) => [
      digest,
      gets.filter((request) => request.path.endsWith(`/blobs/${digest}`)).length,
    ]);
    expect(perBlob).toEqual([...wide.blobs.keys()].map((digest) => [digest, 1]));
  });

  it("refuses a push to a mirrored repository with DENIED, naming the upstream it mirrors", async () => {
    const push = copyOverTls(small.reference, `docker://${gateway}/hub/team/mine:1`, client);

    await expect(push).rejects.toThrow(/denied: hub\/team\/mine is a read-only mirror of upstream hub/);
  });

  it("re-checks a tag past its TTL with a HEAD, and downloads its manifest again only when the tag moved", async () => {
    await copyImage(small.reference, `docker://${upstream.hostPort}/library/busybox:1`);
    expect(await pull("fresh/library/busybox:1", "busybox-first")).toEqual(contentSummary(small));
    const before = (await requestsSeen(upstream)).length;

    expect(await pull("fresh/library/busybox:1", "busybox-unchanged")).toEqual(contentSummary(small));
    const recheck = forRepository((await requestsSeen(upstream)).slice(before), "library/busybox");
    await copyImage(wide.reference, `docker://${upstream.hostPort}/library/busybox:1`);

    expect(await pull("fresh/library/busybox:1", "busybox-moved")).toEqual(contentSummary(wide));
    expect(recheck.length).toBeGreaterThan(0);
    expect(recheck.filter((request) => request.method !== "HEAD")).toEqual([]);
  });

  it("lists a mirrored repository's tags as the upstream has them, under the mirror's name", async () => {
    await copyImage(small.reference, `docker://${upstream.hostPort}/library/alpine:edge`);

    expect(await tagsOf("hub/library/alpine")).toEqual({
      status: 200,
      body: { name: "hub/library/alpine", tags: ["3", "edge"] },
    });
  });

  it("finishes fetching a blob into the cache when the client that asked for it disconnects", async () => {
    const image = await buildDockerSchema2Image(join(work.path, "gone"), { layerSizes: [32 * 1024 * 1024] });
    await copyImage(image.reference, `docker://${upstream.hostPort}/team/gone:1`);
    const layer = [...image.blobs.entries()].find(([, size]) => size > 1024 * 1024)?.[0] as string;
    const token = await fetchToken(serve.url, serve.caPem, user, password, ["repository:hub/team/gone:pull"]);

    await new Promise<void>((resolve, reject) => {
      const req = httpsGet(
        `${serve.url}/v2/hub/team/gone/blobs/${layer}`,
        { ca: serve.caPem, headers: { Authorization: `Bearer ${token}` } },
        (res) => {
          if (res.statusCode !== 200) reject(new Error(`the blob GET answered ${res.statusCode}`));
          res.once("data", () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on("error", (error) => (req.destroyed ? undefined : reject(error)));
    });
    expect(await pull("hub/team/gone:1", "gone")).toEqual(contentSummary(image));

    const gets = forRepository(await requestsSeen(upstream), "team/gone").filter(
      (request) => request.method === "GET" && request.path.endsWith(`/blobs/${layer}`),
    );
    expect(gets).toHaveLength(1);
  });

  it("caches a 512 MiB layer while streaming it to four clients at once, each server process staying under 200 MiB", async () => {
    const large = await buildLargeImage(join(work.path, "large"), 512 * 1024 * 1024);
    await copyImage(large.reference, `docker://${upstream.hostPort}/team/large:1`);

    const pulls = Promise.all(Array.from({ length: 4 }, (_, i) => pull("hub/team/large:1", `large-${i}`)));
    const peak = await peakRssMiB(serve.process.pid, pulls);

    for (const pulled of await pulls) expect(pulled).toEqual(contentSummary(large));
    const layer = [...large.blobs.keys()][1] as string;
    const gets = forRepository(await requestsSeen(upstream), "team/large").filter(
      (request) => request.method === "GET" && request.path.endsWith(`/blobs/${layer}`),
    );
    expect(gets).toHaveLength(1);
    expect(peak).toBeLessThan(200);
  });

  it("still serves cached images byte-identical once the upstream has stopped, and logs that it could not ask it", async () => {
    expect(await pull("fresh/library/alpine:3", "fresh-while-up")).toEqual(contentSummary(small));

    await upstream.stop();
    upstreamStopped = true;

    expect(await pull("hub/library/alpine:3", "after-stop")).toEqual(contentSummary(small));
    expect(await pull("hub/team/tool:1", "after-stop-tool")).toEqual(contentSummary(wide));
    expect(await pull("fresh/library/alpine:3", "fresh-after-stop")).toEqual(contentSummary(small));
    expect(await tagsOf("hub/library/alpine")).toEqual({
      status: 200,
      body: { name: "hub/library/alpine", tags: ["3"] },
    });
    await expect(pull("hub/library/never:1", "never")).rejects.toThrow(/503|unavailable/i);
    expect(await serve.output()).toMatch(/upstream \\?"hub\\?" could not confirm the tag; serving the cached manifest/);
  });
});
