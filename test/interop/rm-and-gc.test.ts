import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ImageSummary } from "../../src/registry/inventory.js";
import { startDockerRegistry } from "../support/docker-registry.js";
import { buildDockerSchema2Image, contentSummary, type BuiltImage } from "../support/images.js";
import { startServeWithConfig, type ServeWithConfig } from "../support/serve-with-config.js";
import { copyImage, copyOverTls, pullOverTls, readDirCopy } from "../support/skopeo.js";
import { storedBlobSizes } from "../support/stored-blobs.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

/** Bytes of every blob's data under the root: what gc gives back. */
const blobBytes = async (dataDir: string) => (await storedBlobSizes(dataDir)).reduce((a, b) => a + b, 0);

const imageBytes = (image: BuiltImage) =>
  [...image.blobs.values()].reduce((a, b) => a + b, 0) +
  [...image.manifests.values()].reduce((a, m) => a + m.length, 0);

describe("portcullis rm and gc on a serving registry", () => {
  let work: TempDir;
  let portcullis: ServeWithConfig;
  const erin = { user: "erin", password: randomBytes(12).toString("base64url") };
  const images = new Map<string, BuiltImage>();

  beforeAll(async () => {
    requireTool("skopeo", "skopeo");
    work = await makeTempDir("rm-and-gc-");
    portcullis = await startServeWithConfig(work.path, {
      auth: { groups: { admins: ["admin"], developers: ["erin"] } },
      policies: [
        { group: "admins", repository: "*", actions: ["*"] },
        { group: "developers", repository: "team/*", actions: ["pull", "push"] },
      ],
      gc: { untagged: "remove", graceSeconds: 0 },
    });
    await portcullis.addUser(erin);
    for (const name of ["kept", "shared", "dropped", "remote"]) {
      images.set(name, await buildDockerSchema2Image(join(work.path, name), { layerSizes: [96 * 1024, 8 * 1024] }));
    }
    const push = (image: BuiltImage, ref: string) =>
      copyOverTls(image.reference, `docker://${portcullis.registry}/${ref}`, portcullis.clientAs(portcullis.admin));
    await push(images.get("kept")!, "team/kept:v1");
    await push(images.get("shared")!, "team/shared:a");
    await push(images.get("shared")!, "team/shared:b");
    await push(images.get("dropped")!, "team/dropped:v1");
    await push(images.get("remote")!, "team/remote:v1");
  });

  afterAll(async () => {
    await portcullis?.stop();
    await work?.stop();
  });

  it("lists repositories and tags locally and through the API, with digest, size, platform and pusher", async () => {
    const names = await portcullis.local(["ls", "--json"]);
    expect(names.code, names.stderr).toBe(0);
    expect(JSON.parse(names.stdout)).toEqual(
      ["team/dropped", "team/kept", "team/remote", "team/shared"].map((name) => ({ name })),
    );
    const tags = await portcullis.local(["ls", "team/shared", "--json"]);
    const listed = JSON.parse(tags.stdout) as ImageSummary[];
    const shared = images.get("shared")!;
    expect(listed.map((i) => i.tag)).toEqual(["a", "b"]);
    expect(listed[0]).toMatchObject({
      digest: shared.descriptor.digest,
      size: imageBytes(shared),
      platforms: ["linux/amd64"],
      pushedBy: "admin",
    });
    const remote = await portcullis.remote(erin, ["ls", "team/shared", "--json"]);
    expect(remote.code, remote.stderr).toBe(0);
    expect(JSON.parse(remote.stdout)).toEqual(
      listed.map(({ repository, tag, digest, mediaType, size, platforms }) => ({
        repository,
        tag,
        digest,
        mediaType,
        size,
        platforms,
      })),
    );
  });

  it("refuses rm --server to a user the policy does not let delete, with DENIED, and removes nothing", async () => {
    const refused = await portcullis.remote(erin, ["rm", "team/remote:v1"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/DENIED/);
    const still = await portcullis.local(["ls", "team/remote", "--json"]);
    expect((JSON.parse(still.stdout) as { tag: string }[]).map((i) => i.tag)).toEqual(["v1"]);
  });

  it("removes a manifest and its tags with rm --server --all-tags as a user who may delete", async () => {
    const removed = await portcullis.remote(portcullis.admin, ["rm", "team/remote:v1", "--all-tags"]);
    expect(removed.code, removed.stderr).toBe(0);
    const left = await portcullis.local(["ls", "team/remote", "--json"]);
    expect(JSON.parse(left.stdout)).toEqual([]);
  });

  it("gives back exactly the bytes only the removed image used, and every other image still pulls byte-identical", async () => {
    await portcullis.local(["gc"]); // the remote image's blobs from the test before
    const before = await blobBytes(portcullis.serve.dataDir);
    expect((await portcullis.local(["rm", "team/shared:b"])).code).toBe(0);
    expect((await portcullis.local(["rm", "team/dropped:v1"])).code).toBe(0);
    const dry = await portcullis.local(["gc", "--dry-run", "--json"]);
    expect(JSON.parse(dry.stdout).gc.bytes).toBe(imageBytes(images.get("dropped")!));
    expect(await blobBytes(portcullis.serve.dataDir)).toBe(before);
    const run = await portcullis.local(["gc", "--json", "--settle", "1"]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).gc.bytes).toBe(imageBytes(images.get("dropped")!));
    expect(before - (await blobBytes(portcullis.serve.dataDir))).toBe(imageBytes(images.get("dropped")!));

    for (const [name, ref] of [
      ["kept", "team/kept:v1"],
      ["shared", "team/shared:a"],
    ] as const) {
      const out = join(work.path, `pulled-${name}`);
      const pulled = await pullOverTls(`docker://${portcullis.registry}/${ref}`, out, portcullis.clientAs(erin));
      expect(contentSummary(pulled)).toEqual(contentSummary(images.get(name)!));
    }
    const audit = await portcullis.local(["audit", "--action", "gc", "--json"]);
    expect(audit.stdout).toContain(`"bytes":${imageBytes(images.get("dropped")!)}`);
  });

  it("leaves a root docker-registry still serves", async () => {
    const reference = await startDockerRegistry({ root: portcullis.serve.dataDir });
    try {
      const out = join(work.path, "from-docker-registry");
      await copyImage(`docker://${reference.hostPort}/team/kept:v1`, `dir:${out}`);
      expect(contentSummary(await readDirCopy(out))).toEqual(contentSummary(images.get("kept")!));
    } finally {
      await reference.stop();
    }
  });
});
