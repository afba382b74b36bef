import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistryServer, type RegistryServer } from "../../src/registry/server.js";
import { startDockerd, type Dockerd } from "../support/dockerd.js";
import { MEDIA_TYPES, buildRootfsTar, sha256 } from "../support/images.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

describe("docker pushing to and pulling from the built-in registry", () => {
  let work: TempDir;
  let registry: RegistryServer;
  let dockerd: Dockerd;
  let repository: string;
  let imageId: string;
  let pushedDigest: string | undefined;

  beforeAll(async () => {
    requireTool("dockerd", "docker.io");
    work = await makeTempDir("docker-push-pull-");
    registry = await startRegistryServer({ root: join(work.path, "root"), listen: "127.0.0.1:0" });
    // docker treats 127.0.0.0/8 as an insecure registry, so plain HTTP works here with no daemon flag.
    repository = `${new URL(registry.url).host}/team/app`;
    dockerd = await startDockerd();
    // Random bytes do not compress, so docker streams a layer of about 4 MiB.
    const rootfs = await buildRootfsTar(join(work.path, "rootfs.tar"), 4 * 1024 * 1024);
    imageId = (await dockerd.docker(["import", rootfs.path, "portcullis-test/rootfs:imported"])).stdout.trim();
    await dockerd.docker(["tag", "portcullis-test/rootfs:imported", `${repository}:v1`]);
  });

  afterAll(async () => {
    await dockerd?.stop();
    await registry?.close();
    await work?.stop();
  });

  async function localImageIds(): Promise<string[]> {
    const { stdout } = await dockerd.docker(["images", "--all", "--no-trunc", "--quiet"]);
    return [...new Set(stdout.split("\n").filter(Boolean))];
  }

  async function removeLocalImage(): Promise<void> {
    await dockerd.docker(["rmi", "--force", imageId]);
    expect(await localImageIds()).toEqual([]);
  }

  function digestOfPush(): string {
    if (pushedDigest === undefined)
      throw new Error("the push test did not record a digest, so there is nothing to pull");
    return pushedDigest;
  }

  it("pushes an imported image and reports the digest of the manifest the registry serves", async () => {
    const { stdout } = await dockerd.docker(["push", `${repository}:v1`]);

    const reported = /v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)/.exec(stdout);
    expect(reported, stdout).not.toBeNull();
    pushedDigest = reported![1]!;
    const repoDigest = (
      await dockerd.docker(["inspect", "--format", "{{index .RepoDigests 0}}", `${repository}:v1`])
    ).stdout.trim();
    expect(repoDigest).toBe(`${repository}@${pushedDigest}`);
    const res = await fetch(`${registry.url}/v2/team/app/manifests/v1`, {
      headers: { Accept: MEDIA_TYPES.dockerManifest },
    });
    const body = Buffer.from(await res.arrayBuffer());
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(MEDIA_TYPES.dockerManifest);
    expect(res.headers.get("docker-content-digest")).toBe(pushedDigest);
    expect(sha256(body)).toBe(pushedDigest);
    expect(body.length).toBe(Number(reported![2]));
  });

  it("pulls the image back by tag with the same image id", async () => {
    const digest = digestOfPush();
    await removeLocalImage();

    const { stdout } = await dockerd.docker(["pull", `${repository}:v1`]);

    expect(stdout).toContain(`Digest: ${digest}`);
    const { stdout: id } = await dockerd.docker(["inspect", "--format", "{{.Id}}", `${repository}:v1`]);
    expect(id.trim()).toBe(imageId);
  });

  it("pulls the image back by digest with the same image id", async () => {
    const digest = digestOfPush();
    await removeLocalImage();

    await dockerd.docker(["pull", `${repository}@${digest}`]);

    const { stdout: id } = await dockerd.docker(["inspect", "--format", "{{.Id}}", `${repository}@${digest}`]);
    expect(id.trim()).toBe(imageId);
  });

  it("pushes the same image to a second repository by mounting its layer from the first", async () => {
    const digest = digestOfPush();
    const copy = `${new URL(registry.url).host}/team/app-copy:v1`;
    await dockerd.docker(["tag", `${repository}@${digest}`, copy]);

    const { stdout } = await dockerd.docker(["push", copy]);

    expect(stdout).toMatch(/Mounted from team\/app/);
    expect(stdout).toContain(`v1: digest: ${digest}`);
  });
});
