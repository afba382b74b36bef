import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createBlobStore } from "../../src/registry/blob-store.js";
import { digestOf } from "../../src/registry/digest.js";
import { createGarbageCollector } from "../../src/registry/gc.js";
import { createInventory } from "../../src/registry/inventory.js";
import { createManifestStore } from "../../src/registry/manifest-store.js";
import { mediaTypes } from "../../src/registry/media-types.js";
import type { StorageDriver } from "../../src/registry/storage/driver.js";
import { createFilesystemDriver } from "../../src/registry/storage/filesystem.js";
import { layout } from "../../src/registry/storage/layout.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

let dir: TempDir;
let storage: StorageDriver;

beforeEach(async () => {
  dir = await makeTempDir("portcullis-gc-");
  storage = createFilesystemDriver(dir.path);
});
afterEach(() => dir.stop());

const descriptor = (mediaType: string, content: Buffer) => ({
  mediaType,
  digest: digestOf(content).text,
  size: content.length,
});

async function pushBlob(repository: string, content: Buffer) {
  const blobs = createBlobStore(storage);
  const digest = digestOf(content);
  await storage.putContent(layout.blobData(digest), content);
  await blobs.link(repository, digest);
  return descriptor("application/vnd.oci.image.layer.v1.tar", content);
}

async function pushImage(repository: string, tag: string | undefined, layers: string[], extra: object = {}) {
  const config = Buffer.from(JSON.stringify({ os: "linux", architecture: "amd64", layers }));
  const configDescriptor = {
    ...(await pushBlob(repository, config)),
    mediaType: "application/vnd.oci.image.config.v1+json",
  };
  const layerDescriptors = [];
  for (const layer of layers) layerDescriptors.push(await pushBlob(repository, Buffer.from(layer)));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.ociManifest,
      config: configDescriptor,
      layers: layerDescriptors,
      ...extra,
    }),
  );
  return putManifest(repository, tag, manifest);
}

async function putManifest(repository: string, tag: string | undefined, manifest: Buffer) {
  const manifests = createManifestStore(storage, createBlobStore(storage));
  const digest = digestOf(manifest);
  await manifests.put(repository, tag ? { tag } : { digest }, manifest, undefined);
  return descriptor(JSON.parse(manifest.toString()).mediaType as string, manifest);
}

const blobExists = async (text: string) =>
  (await storage.stat(layout.blobData({ algorithm: "sha256", hex: text.slice(7), text }))) !== undefined;

/** Two runs: the first marks candidates, the second removes those still unused. */
async function collect(untagged = false) {
  const gc = createGarbageCollector({ storage, graceMs: 0 });
  await gc.run({ dryRun: false, untagged });
  return gc.run({ dryRun: false, untagged });
}

describe("garbage collection's mark", () => {
  it("keeps the children of a tagged index and every blob they reference", async () => {
    const amd = await pushImage("app", undefined, ["amd layer"]);
    const arm = await pushImage("app", undefined, ["arm layer"]);
    await putManifest(
      "app",
      "multi",
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [amd, arm] })),
    );
    const report = await collect(true);
    expect(report.blobs).toEqual([]);
    expect(report.manifests).toEqual([]);
    expect(await blobExists(digestOf(Buffer.from("arm layer")).text)).toBe(true);
  });

  it("keeps a referrer whose subject is alive and removes one whose subject is gone", async () => {
    const subject = await pushImage("app", "v1", ["base"]);
    const signature = await pushImage("app", undefined, ["signature"], { subject });
    const orphanSubject = await pushImage("app", "old", ["old"]);
    const orphanSignature = await pushImage("app", undefined, ["old signature"], { subject: orphanSubject });
    await createManifestStore(storage, createBlobStore(storage)).delete("app", { tag: "old" });
    const gc = createGarbageCollector({ storage, graceMs: 0 });
    const dry = await gc.run({ dryRun: true, untagged: true });
    expect(dry.manifests.map((m) => m.digest).sort()).toEqual([orphanSubject.digest, orphanSignature.digest].sort());
    expect(dry.manifests.map((m) => m.digest)).not.toContain(signature.digest);
    await collect(true);
    expect(await blobExists(digestOf(Buffer.from("signature")).text)).toBe(true);
    expect(await blobExists(digestOf(Buffer.from("old signature")).text)).toBe(false);
    expect(await blobExists(orphanSubject.digest)).toBe(false);
  });

  it("keeps untagged manifests and their layers unless asked to remove them", async () => {
    const untagged = await pushImage("app", undefined, ["untagged layer"]);
    expect((await collect(false)).blobs).toEqual([]);
    expect(await blobExists(untagged.digest)).toBe(true);
    const report = await collect(true);
    expect(report.blobs.map((b) => b.digest)).toContain(digestOf(Buffer.from("untagged layer")).text);
    expect(await blobExists(untagged.digest)).toBe(false);
  });

  it("removes only the layers no other image uses, and their _layers links", async () => {
    await pushImage("app", "a", ["shared", "only a"]);
    await pushImage("other", "b", ["shared", "only b"]);
    const before = await createInventory({ storage }).usage();
    await createManifestStore(storage, createBlobStore(storage)).delete("app", { tag: "a" });
    const report = await collect(true);
    const after = await createInventory({ storage }).usage();
    expect(before.bytes - after.bytes).toBe(report.bytes);
    expect(await blobExists(digestOf(Buffer.from("shared")).text)).toBe(true);
    expect(await blobExists(digestOf(Buffer.from("only a")).text)).toBe(false);
    expect(await storage.stat(layout.layerLinkDir("app", digestOf(Buffer.from("only a"))))).toBeUndefined();
    expect(await storage.stat(layout.layerLinkDir("other", digestOf(Buffer.from("shared"))))).toBeDefined();
  });

  it("spares a candidate blob that a repository used between the two runs", async () => {
    const orphan = await pushBlob("app", Buffer.from("pushed, manifest still coming"));
    const gc = createGarbageCollector({ storage, graceMs: 0 });
    const first = await gc.run({ dryRun: false });
    expect(first.candidates.map((c) => c.digest)).toContain(orphan.digest);
    await createBlobStore(storage).stat("app", digestOf(Buffer.from("pushed, manifest still coming")));
    const second = await gc.run({ dryRun: false });
    expect(second.blobs).toEqual([]);
    expect(await blobExists(orphan.digest)).toBe(true);
  });

  it("never sweeps a blob written within the grace period", async () => {
    const fresh = await pushBlob("app", Buffer.from("fresh"));
    const gc = createGarbageCollector({ storage, graceMs: 60 * 60 * 1000 });
    await gc.run({ dryRun: false });
    const report = await gc.run({ dryRun: false });
    expect(report.blobs).toEqual([]);
    expect(await blobExists(fresh.digest)).toBe(true);
  });

  it("sweeps uploads only once idle past their grace period", async () => {
    const now = Date.now();
    await storage.putContent(layout.uploadStartedAt("app", "old"), new Date(now).toISOString());
    await storage.append(layout.uploadData("app", "old"), 0, Readable.from([Buffer.from("partial")]));
    await storage.putContent(layout.uploadStartedAt("app", "new"), new Date(now).toISOString());
    const gc = createGarbageCollector({ storage, graceMs: 0, uploadGraceMs: 60_000, now: () => now + 30_000 });
    expect((await gc.run({ dryRun: false })).uploads).toEqual([]);
    const later = createGarbageCollector({ storage, graceMs: 0, uploadGraceMs: 60_000, now: () => now + 120_000 });
    const report = await later.run({ dryRun: true });
    expect(report.uploads.map((u) => u.id).sort()).toEqual(["new", "old"]);
    expect(report.uploads.find((u) => u.id === "old")?.size).toBe(7);
  });

  it("lists a page of tags with size and platform, reading only that page", async () => {
    for (const tag of ["a", "b", "c"]) await pushImage("app", tag, [`layer ${tag}`]);
    const inventory = createInventory({ storage });
    const page = await inventory.tags("app", { n: 2 });
    expect(page.images.map((i) => i.tag)).toEqual(["a", "b"]);
    expect(page.next).toBe("b");
    expect(page.images[0]?.platforms).toEqual(["linux/amd64"]);
    const rest = await inventory.tags("app", { last: "b", n: 2 });
    expect(rest.images.map((i) => i.tag)).toEqual(["c"]);
    expect(rest.next).toBeUndefined();
    await expect(inventory.tags("nope")).rejects.toMatchObject({ code: "NAME_UNKNOWN" });
  });
});
