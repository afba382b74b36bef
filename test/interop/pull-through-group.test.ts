import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestsSeen, startDockerRegistry, type DockerRegistry } from "../support/docker-registry.js";
import { buildDockerSchema2Image, contentSummary, type BuiltImage } from "../support/images.js";
import { httpsRequest } from "../support/https-client.js";
import type { PortcullisServe } from "../support/portcullis-serve.js";
import { tagsListAs } from "../support/registry-token.js";
import { startServeWithConfig, type ServeWithConfig } from "../support/serve-with-config.js";
import { copyImage, copyOverTls, pullOverTls, type TlsClientOptions } from "../support/skopeo.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

const tagLink = (data: string, repository: string, tag: string) =>
  join(data, "docker/registry/v2/repositories", repository, "_manifests/tags", tag, "current/link");

describe("a group over a pull-through cache of a docker-registry: one address for push and pull, with skopeo over TLS", () => {
  let work: TempDir;
  let upstream: DockerRegistry;
  let upstreamStopped = false;
  let portcullis: ServeWithConfig;
  let serve: PortcullisServe;
  let client: TlsClientOptions;
  let gateway: string;
  let alpine: BuiltImage;
  let upstreamApp: BuiltImage;
  let upstreamAppNext: BuiltImage;
  let mine: BuiltImage;
  let pushedApp: BuiltImage;
  const user = "grace";
  const password = randomBytes(12).toString("base64url");

  beforeAll(async () => {
    requireTool("docker-registry", "docker-registry");
    requireTool("skopeo", "skopeo");
    work = await makeTempDir("pull-through-group-");
    upstream = await startDockerRegistry();
    const build = (name: string, layerSizes: number[]) =>
      buildDockerSchema2Image(join(work.path, name), { layerSizes });
    alpine = await build("alpine", [256 * 1024, 8 * 1024]);
    upstreamApp = await build("upstream-app", [128 * 1024]);
    upstreamAppNext = await build("upstream-app-next", [96 * 1024]);
    mine = await build("mine", [192 * 1024, 4 * 1024]);
    pushedApp = await build("pushed-app", [64 * 1024, 16 * 1024]);
    await copyImage(alpine.reference, `docker://${upstream.hostPort}/library/alpine:3`);
    await copyImage(upstreamApp.reference, `docker://${upstream.hostPort}/team/app:1`);
    await copyImage(upstreamAppNext.reference, `docker://${upstream.hostPort}/team/app:2`);
    portcullis = await startServeWithConfig(work.path, {
      upstreams: { hub: { url: upstream.url } },
      mirrors: [{ prefix: "hub/", upstream: "hub" }],
      groups: [{ prefix: "all/", mirror: "hub/" }],
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

  const push = (image: BuiltImage, reference: string) =>
    copyOverTls(image.reference, `docker://${gateway}/${reference}`, client);

  const pull = async (reference: string, out: string) =>
    contentSummary(await pullOverTls(`docker://${gateway}/${reference}`, join(work.path, "out", out), client));

  const tagsOf = (repository: string) => tagsListAs(serve, user, password, repository);

  it("stores a push to the group address in the built-in storage, and never sends it to the upstream", async () => {
    await push(mine, "all/team/mine:1");

    expect(existsSync(tagLink(serve.dataDir, "all/team/mine", "1"))).toBe(true);
    const writes = (await requestsSeen(upstream)).filter((request) => !["GET", "HEAD"].includes(request.method));
    const seededWrites = writes.filter((request) => !/^\/v2\/(library\/alpine|team\/app)\//.test(request.path));
    expect(seededWrites).toEqual([]);
    expect((await fetch(`${upstream.url}/v2/team/mine/tags/list`)).status).toBe(404);
  });

  it("pulls the pushed image and an image only the upstream has through the same address, byte-identical", async () => {
    expect(await pull("all/team/mine:1", "mine")).toEqual(contentSummary(mine));
    expect(await pull("all/library/alpine:3", "alpine")).toEqual(contentSummary(alpine));

    expect(existsSync(tagLink(serve.dataDir, "hub/library/alpine", "3"))).toBe(true);
    expect(existsSync(join(serve.dataDir, "docker/registry/v2/repositories/all/library"))).toBe(false);
  });

  it("serves a pushed tag instead of the upstream's tag of the same name, and the upstream's other tags beside it", async () => {
    await push(pushedApp, "all/team/app:1");

    expect(await pull("all/team/app:1", "app-1")).toEqual(contentSummary(pushedApp));
    expect(await pull("all/team/app:2", "app-2")).toEqual(contentSummary(upstreamAppNext));
    expect(await pull("hub/team/app:1", "hub-app-1")).toEqual(contentSummary(upstreamApp));
  });

  it("lists the pushed tags and the upstream's as one list", async () => {
    await push(mine, "all/team/app:3");

    expect(await tagsOf("all/team/app")).toEqual({
      status: 200,
      body: { name: "all/team/app", tags: ["1", "2", "3"] },
    });
    expect(await tagsOf("all/team/mine")).toEqual({ status: 200, body: { name: "all/team/mine", tags: ["1"] } });
    expect(await tagsOf("all/library/alpine")).toEqual({
      status: 200,
      body: { name: "all/library/alpine", tags: ["3"] },
    });
  });

  it("shows in `portcullis ls` which repositories are cached, from which upstream, and which are a group's", async () => {
    const json = await portcullis.local(["ls", "--json"]);
    const text = await portcullis.local(["ls"]);

    expect(json.code, json.stderr).toBe(0);
    const listed = JSON.parse(json.stdout) as { name: string; origin?: unknown }[];
    expect(listed).toContainEqual({
      name: "hub/library/alpine",
      origin: { kind: "cache", upstream: "hub", url: upstream.url },
    });
    expect(listed).toContainEqual({
      name: "all/team/mine",
      origin: { kind: "group", cache: "hub/team/mine", upstream: "hub", url: upstream.url },
    });
    expect(text.stdout).toMatch(new RegExp(`^hub/library/alpine +cache of upstream hub \\(${upstream.url}\\)$`, "m"));
  });

  it("shows on the console's repositories page where a cached repository and a group's come from", async () => {
    const signIn = await httpsRequest(`${serve.url}/sign-in`, {
      method: "POST",
      ca: serve.caPem,
      headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: serve.url },
      body: new URLSearchParams({ username: user, password }).toString(),
    });
    const cookie = String(signIn.headers["set-cookie"]?.[0] ?? "").split(";")[0] as string;
    const page = await httpsRequest(`${serve.url}/`, { ca: serve.caPem, headers: { Cookie: cookie } });

    expect(page.status).toBe(200);
    const rows = page.body.toString("utf8").replace(/\s+/g, " ");
    expect(rows).toMatch(
      />hub\/library\/alpine<\/a><\/td> <td>cache of upstream hub \(http:\/\/127\.0\.0\.1:\d+\)<\/td>/,
    );
    expect(rows).toMatch(/>all\/team\/mine<\/a><\/td> <td>group: pushed here, else hub\/team\/mine from upstream hub/);
  });

  it("takes pushes and serves pushed and cached images while the upstream is down, listing the cached tags", async () => {
    await upstream.stop();
    upstreamStopped = true;

    await push(pushedApp, "all/team/offline:1");
    expect(await pull("all/team/offline:1", "offline")).toEqual(contentSummary(pushedApp));
    expect(await pull("all/library/alpine:3", "alpine-offline")).toEqual(contentSummary(alpine));
    expect(await tagsOf("all/team/app")).toEqual({
      status: 200,
      body: { name: "all/team/app", tags: ["1", "2", "3"] },
    });
  });
});
