// Test images in skopeo's `dir:` layout (a manifest.json, a version file, and every blob in a file named by
// its hex digest), with layers of random bytes so no compression anywhere can shrink them. The layers are
// declared gzip-compressed: with --preserve-digests skopeo then sends them as they are, where an uncompressed
// media type would have it compress them for a registry destination (and refuse, as digests must not change).

import { createHash } from "node:crypto";
import fsp from "node:fs/promises";
import path from "node:path";
import { generateBlob } from "./blob-file.mjs";
import { KiB, MiB } from "./units.mjs";

const LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG_TYPE = "application/vnd.oci.image.config.v1+json";
export const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

/** The images the benchmark pushes and pulls, by name: each a list of layer sizes in bytes. */
export function imageSpecs({ bigMiB, manyLayers }) {
  return {
    big: [bigMiB * MiB],
    layers100: Array(manyLayers[0]).fill(256 * KiB),
    layers200: Array(manyLayers[1]).fill(256 * KiB),
    typical: [30 * MiB, 10 * MiB, 5 * MiB, 1 * MiB, 100 * KiB],
    // Pushed and pulled unmeasured at the start of every skopeo session (see warmUp in cases.mjs).
    warmUp: Array(50).fill(64 * KiB),
  };
}

const hex = (digest) => digest.slice("sha256:".length);

async function writeJsonBlob(dir, value) {
  const bytes = Buffer.from(JSON.stringify(value));
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  await fsp.writeFile(path.join(dir, hex(digest)), bytes);
  return { digest, size: bytes.length, bytes };
}

/**
 * Writes one image of random layers of `layerSizes` bytes into `dir` (created), in the `dir:` layout.
 * Resolves to `{ dir, manifestDigest, blobs: Map(digest → size), bytes, biggestLayer: { digest, size, file } }`,
 * where `bytes` counts every blob (layers and config) as a registry stores them.
 */
async function writeImage(dir, layerSizes) {
  await fsp.mkdir(dir, { recursive: true });
  const layers = [];
  for (const size of layerSizes) {
    const scratch = path.join(dir, "layer.tmp");
    const digest = await generateBlob(scratch, size);
    await fsp.rename(scratch, path.join(dir, hex(digest)));
    layers.push({ mediaType: LAYER_TYPE, digest, size });
  }
  const config = await writeJsonBlob(dir, {
    architecture: "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: CONFIG_TYPE, digest: config.digest, size: config.size },
      layers,
    }),
  );
  await fsp.writeFile(path.join(dir, "manifest.json"), manifest);
  await fsp.writeFile(path.join(dir, "version"), "Directory Transport Version: 1.1\n");
  const blobs = new Map([...layers.map((l) => [l.digest, l.size]), [config.digest, config.size]]);
  return {
    dir,
    manifestDigest: `sha256:${createHash("sha256").update(manifest).digest("hex")}`,
    blobs,
    bytes: [...blobs.values()].reduce((a, b) => a + b, 0),
    biggestLayer: ((l) => ({ ...l, file: path.join(dir, hex(l.digest)) }))(
      layers.reduce((a, b) => (b.size > a.size ? b : a)),
    ),
  };
}

/** Every image of `specs` under `root`, by name. */
export async function writeImages(root, specs) {
  const images = {};
  for (const [name, sizes] of Object.entries(specs)) images[name] = await writeImage(path.join(root, name), sizes);
  return images;
}

/**
 * The blobs a registry holds under its storage `root` (registry:2's layout, which both sides use):
 * Map(digest → size of its data file).
 */
export async function storedBlobs(root) {
  const base = path.join(root, "docker", "registry", "v2", "blobs", "sha256");
  const found = new Map();
  const prefixes = await fsp.readdir(base).catch(() => []);
  for (const prefix of prefixes) {
    for (const name of await fsp.readdir(path.join(base, prefix))) {
      const stat = await fsp.stat(path.join(base, prefix, name, "data")).catch(() => null);
      if (stat) found.set(`sha256:${name}`, stat.size);
    }
  }
  return found;
}

/**
 * Throws unless every blob of `image` is in `stored` with its exact size: a push that moved fewer bytes (a
 * blob skopeo thought it could mount, a layer it recompressed) would otherwise be timed as a fast push.
 */
export function checkAllBlobsArrived(image, stored, where) {
  const problems = [];
  for (const [digest, size] of image.blobs) {
    const got = stored.get(digest);
    if (got === undefined) problems.push(`${digest} missing`);
    else if (got !== size) problems.push(`${digest} has ${got} bytes, expected ${size}`);
  }
  if (problems.length > 0) {
    throw new Error(`after the push, ${where} does not hold the image's blobs: ${problems.slice(0, 5).join("; ")}`);
  }
}
