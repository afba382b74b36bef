import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { writeCertDir, writeContainersClientConfig } from "../support/containers-client.js";
import { startDockerRegistry, type DockerRegistry } from "../support/docker-registry.js";
import { buildDockerSchema2Image, contentSummary, type BuiltImage } from "../support/images.js";
import { portcullisUser } from "../support/portcullis-cli.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { copyImage, copyOverTls, readDirCopy, type TlsClientOptions } from "../support/skopeo.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

interface UpstreamRequest {
  method: string;
  path: string;
}

/** The requests docker-registry's access log shows (`"GET /v2/... HTTP/1.1" 200 ...`), in order. */
async function upstreamRequests(upstream: DockerRegistry): Promise<UpstreamRequest[]> {
  const found: UpstreamRequest[] = [];
  for (const match of (await upstream.log()).matchAll(/"(GET|HEAD|PUT|POST|PATCH|DELETE) (\/v2\/\S*) HTTP\/[\d.]+"/g))
    found.push({ method: match[1] as string, path: match[2] as string });
  return found;
}

const forRepository = (requests: UpstreamRequest[], repository: string) =>
  requests.filter((request) => request.path.startsWith(`/v2/${repository}/`));

describe("a pull-through cache of a docker-registry, pulled from with skopeo over TLS", () => {
  let work: TempDir;
  let upstream: DockerRegistry;
  let upstreamStopped = false;
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
    const config = join(work.path, "portcullis.yaml");
    await writeFile(
      config,
      stringify({
        upstreams: { hub: { url: upstream.url } },
        mirrors: [
          { prefix: "hub/", upstream: "hub" },
          { prefix: "fresh/", upstream: "hub", tagTtlSeconds: 0 },
        ],
        policies: [{ account: user, repository: "*", actions: ["*"] }],
      }),
    );
    serve = await startPortcullisServe({ args: ["--config", config] });
    await portcullisUser(serve, "add", user, { password, config });
    const { policy, env } = await writeContainersClientConfig(work.path);
    client = {
      certDir: await writeCertDir(join(work.path, "cert-dir"), serve.caPem),
      creds: `${user}:${password}`,
      policy,
      env,
    };
    gateway = new URL(serve.url).host;
    await mkdir(join(work.path, "out"));
  });

  afterAll(async () => {
    if (!upstreamStopped) await upstream?.stop();
    await serve?.stop();
    if (serve) await removeTempDir(serve.home);
    await work?.stop();
  });

  async function pull(repository: string, out: string) {
    const dir = join(work.path, "out", out);
    await copyOverTls(`docker://${gateway}/${repository}`, `dir:${dir}`, client);
    return contentSummary(await readDirCopy(dir));
  }

  it("fetches an image from the upstream on its first pull, and serves the second pull without asking the upstream", async () => {
    const before = forRepository(await upstreamRequests(upstream), "library/alpine").length;

    expect(await pull("hub/library/alpine:3", "first")).toEqual(contentSummary(small));
    const afterFirst = forRepository(await upstreamRequests(upstream), "library/alpine");
    expect(afterFirst.length).toBeGreaterThan(before);
    expect(await pull("hub/library/alpine:3", "second")).toEqual(contentSummary(small));

    expect(forRepository(await upstreamRequests(upstream), "library/alpine")).toEqual(afterFirst);
  });

  it("fetches each blob from the upstream exactly once when ten clients pull an uncached image at once", async () => {
    const pulls = Array.from({ length: 10 }, (_, i) => pull("hub/team/tool:1", `concurrent-${i}`));

    for (const pulled of await Promise.all(pulls)) expect(pulled).toEqual(contentSummary(wide));
    const gets = forRepository(await upstreamRequests(upstream), "team/tool").filter(
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

  it("still serves cached images byte-identical once the upstream has stopped, and logs that it could not ask it", async () => {
    expect(await pull("fresh/library/alpine:3", "fresh-while-up")).toEqual(contentSummary(small));

    await upstream.stop();
    upstreamStopped = true;

    expect(await pull("hub/library/alpine:3", "after-stop")).toEqual(contentSummary(small));
    expect(await pull("hub/team/tool:1", "after-stop-tool")).toEqual(contentSummary(wide));
    expect(await pull("fresh/library/alpine:3", "fresh-after-stop")).toEqual(contentSummary(small));
    expect(await serve.output()).toMatch(/upstream \\?"hub\\?" could not confirm the tag; serving the cached manifest/);
  });
});
