import { randomBytes } from "node:crypto";
import { readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { ImageSummary } from "../../src/registry/inventory.js";
import { runPortcullis } from "../support/cli-run.js";
import {
  writeCertDir,
  writeContainersClientConfig,
  type ContainersClientConfig,
} from "../support/containers-client.js";
import { startDockerRegistry } from "../support/docker-registry.js";
import { buildDockerSchema2Image, contentSummary, type BuiltImage } from "../support/images.js";
import { portcullisUser } from "../support/portcullis-cli.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { copyImage, copyOverTls, readDirCopy } from "../support/skopeo.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

/** Bytes of every blob's data under the root: what gc gives back. */
async function blobBytes(dataDir: string): Promise<number> {
  const root = join(dataDir, "docker/registry/v2/blobs");
  let total = 0;
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && entry.name === "data") total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

const imageBytes = (image: BuiltImage) =>
  [...image.blobs.values()].reduce((a, b) => a + b, 0) +
  [...image.manifests.values()].reduce((a, m) => a + m.length, 0);

describe("portcullis rm and gc on a serving registry", () => {
  let work: TempDir;
  let serve: PortcullisServe;
  let config: string;
  let registry: string;
  let client: ContainersClientConfig & { certDir: string };
  const erin = { user: "erin", password: randomBytes(12).toString("base64url") };
  const images = new Map<string, BuiltImage>();

  beforeAll(async () => {
    requireTool("skopeo", "skopeo");
    work = await makeTempDir("rm-and-gc-");
    config = join(work.path, "portcullis.yaml");
    await writeFile(
      config,
      stringify({
        auth: { groups: { admins: ["admin"], developers: ["erin"] } },
        policies: [
          { group: "admins", repository: "*", actions: ["*"] },
          { group: "developers", repository: "team/*", actions: ["pull", "push"] },
        ],
        gc: { untagged: "remove", graceSeconds: 0 },
      }),
    );
    serve = await startPortcullisServe({ args: ["--config", config] });
    registry = `127.0.0.1:${serve.port}`;
    await portcullisUser(serve, "add", erin.user, { password: erin.password, config });
    client = {
      ...(await writeContainersClientConfig(work.path, { registry })),
      certDir: await writeCertDir(join(work.path, "certs.d"), serve.caPem),
    };
    for (const name of ["kept", "shared", "dropped", "remote"]) {
      images.set(name, await buildDockerSchema2Image(join(work.path, name), { layerSizes: [96 * 1024, 8 * 1024] }));
    }
    const push = (image: BuiltImage, ref: string) =>
      copyOverTls(image.reference, `docker://${registry}/${ref}`, { ...client, creds: `admin:${serve.adminPassword}` });
    await push(images.get("kept")!, "team/kept:v1");
    await push(images.get("shared")!, "team/shared:a");
    await push(images.get("shared")!, "team/shared:b");
    await push(images.get("dropped")!, "team/dropped:v1");
    await push(images.get("remote")!, "team/remote:v1");
  });

  afterAll(async () => {
    await serve?.stop();
    if (serve) await removeTempDir(serve.home);
    await work?.stop();
  });

  const local = (args: string[]) =>
    runPortcullis([...args, "--data", serve.dataDir, "--certs", serve.certsDir, "--config", config]);
  const asUser = (who: { user: string; password: string }, args: string[]) =>
    runPortcullis([...args, "--server", serve.url, "--certs", serve.certsDir, "--config", config], {
      env: { ...process.env, PORTCULLIS_USERNAME: who.user, PORTCULLIS_PASSWORD: who.password },
    });
  const admin = () => ({ user: "admin", password: serve.adminPassword });

  it("lists repositories and tags locally and through the API, with digest, size, platform and pusher", async () => {
    const names = await local(["ls", "--json"]);
    expect(names.code, names.stderr).toBe(0);
    expect(JSON.parse(names.stdout)).toEqual(
      ["team/dropped", "team/kept", "team/remote", "team/shared"].map((name) => ({ name })),
    );
    const tags = await local(["ls", "team/shared", "--json"]);
    const listed = JSON.parse(tags.stdout) as ImageSummary[];
    const shared = images.get("shared")!;
    expect(listed.map((i) => i.tag)).toEqual(["a", "b"]);
    expect(listed[0]).toMatchObject({
      digest: shared.descriptor.digest,
      size: imageBytes(shared),
      platforms: ["linux/amd64"],
      pushedBy: "admin",
    });
    const remote = await asUser(erin, ["ls", "team/shared", "--json"]);
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
    const refused = await asUser(erin, ["rm", "team/remote:v1"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/DENIED/);
    const still = await local(["ls", "team/remote", "--json"]);
    expect((JSON.parse(still.stdout) as { tag: string }[]).map((i) => i.tag)).toEqual(["v1"]);
  });

  it("removes a manifest and its tags with rm --server --all-tags as a user who may delete", async () => {
    const removed = await asUser(admin(), ["rm", "team/remote:v1", "--all-tags"]);
    expect(removed.code, removed.stderr).toBe(0);
    const left = await local(["ls", "team/remote", "--json"]);
    expect(JSON.parse(left.stdout)).toEqual([]);
  });

  it("gives back exactly the bytes only the removed image used, and every other image still pulls byte-identical", async () => {
    await local(["gc"]); // the remote image's blobs from the test before
    const before = await blobBytes(serve.dataDir);
    expect((await local(["rm", "team/shared:b"])).code).toBe(0);
    expect((await local(["rm", "team/dropped:v1"])).code).toBe(0);
    const dry = await local(["gc", "--dry-run", "--json"]);
    expect(JSON.parse(dry.stdout).gc.bytes).toBe(imageBytes(images.get("dropped")!));
    expect(await blobBytes(serve.dataDir)).toBe(before);
    const run = await local(["gc", "--json", "--settle", "1"]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).gc.bytes).toBe(imageBytes(images.get("dropped")!));
    expect(before - (await blobBytes(serve.dataDir))).toBe(imageBytes(images.get("dropped")!));

    for (const [name, ref] of [
      ["kept", "team/kept:v1"],
      ["shared", "team/shared:a"],
    ] as const) {
      const out = join(work.path, `pulled-${name}`);
      await copyOverTls(`docker://${registry}/${ref}`, `dir:${out}`, { ...client, creds: `erin:${erin.password}` });
      expect(contentSummary(await readDirCopy(out))).toEqual(contentSummary(images.get(name)!));
    }
    const audit = await local(["audit", "--action", "gc", "--json"]);
    expect(audit.stdout).toContain(`"bytes":${imageBytes(images.get("dropped")!)}`);
  });

  it("leaves a root docker-registry still serves", async () => {
    const reference = await startDockerRegistry({ root: serve.dataDir });
    try {
      const out = join(work.path, "from-docker-registry");
      await copyImage(`docker://${reference.hostPort}/team/kept:v1`, `dir:${out}`);
      expect(contentSummary(await readDirCopy(out))).toEqual(contentSummary(images.get("kept")!));
    } finally {
      await reference.stop();
    }
  });
});
