import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createBlobStore } from "../../src/registry/blob-store.js";
import { digestOf } from "../../src/registry/digest.js";
import { createGarbageCollector, type GcReport } from "../../src/registry/gc.js";
import { createManifestStore, type Reference } from "../../src/registry/manifest-store.js";
import { mediaTypes } from "../../src/registry/media-types.js";
import type { StorageDriver } from "../../src/registry/storage/driver.js";
import { createFilesystemDriver } from "../../src/registry/storage/filesystem.js";
import { layout } from "../../src/registry/storage/layout.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

let dir: TempDir;
let storage: StorageDriver;

beforeEach(async () => {
  dir = await makeTempDir("portcullis-gc-race-");
  storage = createFilesystemDriver(dir.path);
});
afterEach(() => dir.stop());

/** Storage whose writes to `path` wait, once, until released; `reached` resolves when one is waiting. */
function pausingAt(path: string) {
  let arrive!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => (arrive = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  const paused: StorageDriver = {
    ...storage,
    async putContent(target, content, options) {
      if (target === path) {
        arrive();
        await released;
      }
      return storage.putContent(target, content, options);
    },
  };
  return { storage: paused, reached, release };
}

/** Storage that reports the first lock asked for, before it is taken. */
function watchingLocks() {
  let ask!: () => void;
  const asked = new Promise<void>((resolve) => (ask = resolve));
  const watched: StorageDriver = {
    ...storage,
    withLock(key, task) {
      ask();
      return storage.withLock(key, task);
    },
  };
  return { storage: watched, asked };
}

async function image(layerText: string) {
  const blobs = createBlobStore(storage);
  const config = Buffer.from(JSON.stringify({ os: "linux", architecture: "amd64", layer: layerText }));
  const layer = Buffer.from(layerText);
  for (const content of [config, layer]) {
    await storage.putContent(layout.blobData(digestOf(content)), content);
    await blobs.link("app", digestOf(content));
  }
  const descriptor = (mediaType: string, content: Buffer) => ({
    mediaType,
    digest: digestOf(content).text,
    size: content.length,
  });
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.ociManifest,
      config: descriptor("application/vnd.oci.image.config.v1+json", config),
      layers: [descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
    }),
  );
}

const manifestsOn = (on: StorageDriver) => createManifestStore(on, createBlobStore(on));

/**
 * Puts `content` under `reference`, pausing the put at its write of `pauseAt`, and runs one gc (untagged
 * manifests removed, no grace) while it is paused: until gc asks for a lock, or finishes without one.
 */
async function putWithGcInBetween(reference: Reference, content: Buffer, pauseAt: string): Promise<GcReport> {
  const pause = pausingAt(pauseAt);
  const put = manifestsOn(pause.storage).put("app", reference, content, undefined);
  await pause.reached;
  const locks = watchingLocks();
  const gc = createGarbageCollector({ storage: locks.storage, graceMs: 0 }).run({ dryRun: false, untagged: true });
  await Promise.race([locks.asked, gc]);
  pause.release();
  await put;
  return gc;
}

describe("garbage collection of untagged manifests, beside a put", () => {
  it("keeps a manifest whose put has linked its revision but not yet its tag, and the tag then resolves", async () => {
    const content = await image("between revision and tag");
    const report = await putWithGcInBetween({ tag: "v1" }, content, layout.tagCurrentLink("app", "v1"));
    expect(report.manifests).toEqual([]);
    const served = await manifestsOn(storage).get("app", { tag: "v1" });
    expect(served.digest.text).toBe(digestOf(content).text);
  });

  it("keeps an untagged manifest that a put is moving a tag to", async () => {
    const content = await image("pushed by digest, then tagged");
    await manifestsOn(storage).put("app", { digest: digestOf(content) }, content, undefined);
    const report = await putWithGcInBetween({ tag: "later" }, content, layout.tagCurrentLink("app", "later"));
    expect(report.manifests).toEqual([]);
    expect((await manifestsOn(storage).get("app", { tag: "later" })).digest.text).toBe(digestOf(content).text);
  });

  it("keeps the untagged children of an index whose put is under way, and every platform then pulls", async () => {
    const amd = await image("amd64 layer");
    const arm = await image("arm64 layer");
    for (const child of [amd, arm])
      await manifestsOn(storage).put("app", { digest: digestOf(child) }, child, undefined);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: mediaTypes.ociIndex,
        manifests: [amd, arm].map((child) => ({
          mediaType: mediaTypes.ociManifest,
          digest: digestOf(child).text,
          size: child.length,
        })),
      }),
    );
    const report = await putWithGcInBetween({ tag: "multi" }, index, layout.revisionLink("app", digestOf(index)));
    expect(report.manifests).toEqual([]);
    expect((await manifestsOn(storage).get("app", { tag: "multi" })).digest.text).toBe(digestOf(index).text);
    for (const child of [amd, arm]) {
      expect((await manifestsOn(storage).get("app", { digest: digestOf(child) })).content).toEqual(child);
    }
  });

  it("still removes an untagged manifest no put is touching, with no grace period", async () => {
    const content = await image("untagged, nobody coming");
    await manifestsOn(storage).put("app", { digest: digestOf(content) }, content, undefined);
    const report = await createGarbageCollector({ storage, graceMs: 0 }).run({ dryRun: false, untagged: true });
    expect(report.manifests.map((m) => m.digest)).toEqual([digestOf(content).text]);
    await expect(manifestsOn(storage).get("app", { digest: digestOf(content) })).rejects.toMatchObject({
      code: "MANIFEST_UNKNOWN",
    });
  });
});
