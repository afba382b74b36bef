import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDockerd, type Dockerd } from "../support/dockerd.js";
import { httpsRequest } from "../support/https-client.js";
import { buildRootfsTar } from "../support/images.js";
import type { PortcullisServe } from "../support/portcullis-serve.js";
import { startServeWithConfig, type ServeWithConfig } from "../support/serve-with-config.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

// `docker search HOST/TERM` is answered by the daemon, through the registry v1 search API (moby
// registry/search.go): the seed's `Unexpected status code 404` was that API missing.
describe("docker search against portcullis serve", () => {
  let work: TempDir;
  let portcullis: ServeWithConfig;
  let serve: PortcullisServe;
  let dockerd: Dockerd;
  let registry: string;
  const alice = { user: "alice", password: randomBytes(12).toString("base64url") };

  beforeAll(async () => {
    requireTool("dockerd", "docker.io");
    work = await makeTempDir("docker-search-");
    portcullis = await startServeWithConfig(work.path, {
      policies: [
        { account: "admin", repository: "*", actions: ["*"] },
        { account: alice.user, repository: "team/*", actions: ["pull", "push"] },
      ],
    });
    ({ serve, registry } = portcullis);
    await portcullis.addUser(alice);
    dockerd = await startDockerd();
    const rootfs = await buildRootfsTar(join(work.path, "rootfs.tar"), 64 * 1024);
    await dockerd.login(registry, "admin", serve.adminPassword);
    for (const repository of ["team/app", "team/api", "team/web-app", "secret/app"]) {
      await dockerd.docker(["import", rootfs.path, `${registry}/${repository}:v1`]);
      await dockerd.docker(["push", `${registry}/${repository}:v1`]);
    }
  });

  afterAll(async () => {
    await dockerd?.stop();
    await portcullis?.stop();
    await work?.stop();
  });

  /** The NAME column of `docker search`. */
  async function searchNames(term: string): Promise<string[]> {
    const { stdout } = await dockerd.docker(["search", "--no-trunc", "--format", "{{.Name}}", `${registry}/${term}`]);
    return stdout.split("\n").filter(Boolean).sort();
  }

  it("lists the matching repositories a logged-in user may pull, and not the others", async () => {
    await dockerd.login(registry, alice.user, alice.password);

    expect(await searchNames("app")).toEqual(["team/app", "team/web-app"]);
    expect(await searchNames("team")).toEqual(["team/api", "team/app", "team/web-app"]);
  });

  it("shows an admin every matching repository", async () => {
    await dockerd.login(registry, "admin", serve.adminPassword);

    expect(await searchNames("app")).toEqual(["secret/app", "team/app", "team/web-app"]);
  });

  it("shows an anonymous caller only what anonymous callers may pull: here nothing, and no error", async () => {
    await dockerd.docker(["logout", registry]);

    expect(await searchNames("app")).toEqual([]);
  });

  it("pages with n and page, in the fields docker and the Hub use", async () => {
    const basic = Buffer.from(`admin:${serve.adminPassword}`).toString("base64");
    const res = await httpsRequest(`${serve.url}/v1/search?q=team&n=2&page=2`, {
      ca: serve.caPem,
      headers: { Authorization: `Basic ${basic}` },
    });

    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({
      query: "team",
      num_results: 3,
      num_pages: 2,
      page: 2,
      page_size: 2,
      results: [{ name: "team/web-app", description: "", star_count: 0, is_official: false, is_automated: false }],
    });
  });

  it("refuses a wrong password and a bad page size with a clear error", async () => {
    const wrong = Buffer.from("alice:wrong").toString("base64");
    const refused = await httpsRequest(`${serve.url}/v1/search?q=app`, {
      ca: serve.caPem,
      headers: { Authorization: `Basic ${wrong}` },
    });
    const tooMany = await httpsRequest(`${serve.url}/v1/search?q=app&n=1000`, { ca: serve.caPem });

    expect(refused.status).toBe(401);
    expect(tooMany.status).toBe(400);
    expect(JSON.parse(tooMany.body.toString())).toEqual({ error: "n must be a whole number from 1 to 100" });
  });
});
