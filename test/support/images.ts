import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createTar } from "./tar.js";

export const MEDIA_TYPES = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociEmpty: "application/vnd.oci.empty.v1+json",
} as const;

/** The OCI image-spec v1.1 empty descriptor: the two bytes `{}`. */
export const EMPTY_DESCRIPTOR = {
  mediaType: MEDIA_TYPES.ociEmpty,
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
} as const;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** What a copy of an image must reproduce exactly: every manifest's bytes and every blob's digest and size. */
export interface ImageContent {
  /** digest → exact bytes, for the top-level manifest (or index) and every manifest it lists */
  manifests: Map<string, Buffer>;
  /** digest → size, for every config and layer blob */
  blobs: Map<string, number>;
}

/** Sorted digests (and blob sizes), so two contents compare with `toEqual` and a mismatch reads as a diff. */
export function contentSummary(content: ImageContent): { manifests: string[]; blobs: [string, number][] } {
  return {
    manifests: [...content.manifests.keys()].sort(),
    blobs: [...content.blobs.entries()].sort(([a], [b]) => a.localeCompare(b)),
  };
}

export interface BuiltImage extends ImageContent {
  /** The directory holding it. */
  path: string;
  /** The skopeo source reference: `dir:PATH` or `oci:PATH:TAG`. */
  reference: string;
  /** Descriptor of the top-level manifest or index, e.g. for a `subject`. */
  descriptor: Descriptor;
}

export function sha256(content: Buffer | string): string {
  return `sha256:${createHash("sha256").update(content).digest("hex")}`;
}

function describe(mediaType: string, content: Buffer): Descriptor {
  return { mediaType, digest: sha256(content), size: content.length };
}

// Indented (not canonical) JSON, so a registry that re-serializes a manifest changes its digest and fails.
function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, null, 2) + "\n");
}

interface Layer {
  /** gzipped tar, as pushed */
  blob: Buffer;
  /** digest of the uncompressed tar: the config's rootfs.diff_ids entry */
  diffId: string;
}

/** A gzipped tar with one directory and one file of random bytes, so every layer is unique. */
function randomLayer(size: number): Layer {
  const id = randomBytes(8).toString("hex");
  const tar = createTar([{ path: `layer-${id}/` }, { path: `layer-${id}/random.bin`, content: randomBytes(size) }]);
  return { blob: gzipSync(tar), diffId: sha256(tar) };
}

function imageConfig(platform: Platform, layers: readonly Layer[]): Buffer {
  const created = new Date().toISOString();
  return json({
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant === undefined ? {} : { variant: platform.variant }),
    config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map(() => ({ created, created_by: "portcullis test layer" })),
  });
}

class OciLayoutWriter {
  readonly blobs = new Map<string, Buffer>();
  add(content: Buffer): string {
    const digest = sha256(content);
    this.blobs.set(digest, content);
    return digest;
  }
  async write(dir: string, top: Descriptor, tag: string): Promise<void> {
    await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
    await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    const ref = { ...top, annotations: { ...top.annotations, "org.opencontainers.image.ref.name": tag } };
    await writeFile(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [ref] }));
    for (const [digest, content] of this.blobs) {
      await writeFile(join(dir, "blobs", "sha256", digest.slice("sha256:".length)), content);
    }
  }
}

export interface ImageOptions {
  /** Sizes in bytes of the random file in each layer. */
  layerSizes?: number[];
}

/**
 * A Docker schema2 image (`application/vnd.docker.distribution.manifest.v2+json`) as a skopeo `dir:`
 * directory: `manifest.json`, one file per blob named by its hex digest, and `version`.
 * skopeo pushes that manifest unchanged.
 */
export async function buildDockerSchema2Image(dir: string, options: ImageOptions = {}): Promise<BuiltImage> {
  return writeDockerSchema2Dir(dir, (options.layerSizes ?? [48 * 1024, 16 * 1024]).map(randomLayer));
}

export interface RootfsImage extends BuiltImage {
  /** The config blob's digest: the image id docker shows once it has pulled the image. */
  configDigest: string;
  /** The root filesystem its layer holds. */
  rootfs: RootfsTar;
}

/**
 * A Docker schema2 image whose one layer is the root filesystem tar `rootfs` (see buildRootfsTar), gzipped:
 * what `docker pull` unpacks into an image that `docker create` and `docker cp` can use, as a skopeo `dir:`.
 */
export async function buildRootfsImage(dir: string, rootfs: RootfsTar): Promise<RootfsImage> {
  const image = await writeDockerSchema2Dir(dir, [
    { blob: gzipSync(await readFile(rootfs.path)), diffId: rootfs.digest },
  ]);
  const manifest = JSON.parse(image.manifests.get(image.descriptor.digest)!.toString("utf8")) as {
    config: Descriptor;
  };
  return { ...image, configDigest: manifest.config.digest, rootfs };
}

async function writeDockerSchema2Dir(dir: string, layers: readonly Layer[]): Promise<BuiltImage> {
  const config = imageConfig({ architecture: "amd64", os: "linux" }, layers);
  const manifest = json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.dockerManifest,
    config: describe(MEDIA_TYPES.dockerConfig, config),
    layers: layers.map((layer) => describe(MEDIA_TYPES.dockerLayer, layer.blob)),
  });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "version"), "Directory Transport Version: 1.1\n");
  await writeFile(join(dir, "manifest.json"), manifest);
  const blobs = new Map<string, number>();
  for (const blob of [config, ...layers.map((layer) => layer.blob)]) {
    const digest = sha256(blob);
    blobs.set(digest, blob.length);
    await writeFile(join(dir, digest.slice("sha256:".length)), blob);
  }
  const descriptor = describe(MEDIA_TYPES.dockerManifest, manifest);
  return { path: dir, reference: `dir:${dir}`, descriptor, manifests: new Map([[descriptor.digest, manifest]]), blobs };
}

export interface IndexOptions extends ImageOptions {
  tag?: string;
  platforms?: Platform[];
}

/** An OCI image index over one image per platform (linux/amd64 and linux/arm64 by default), as an `oci:` layout. */
export async function buildOciImageIndex(dir: string, options: IndexOptions = {}): Promise<BuiltImage> {
  const tag = options.tag ?? "latest";
  const platforms = options.platforms ?? [
    { architecture: "amd64", os: "linux" },
    { architecture: "arm64", os: "linux", variant: "v8" },
  ];
  const writer = new OciLayoutWriter();
  const manifests = new Map<string, Buffer>();
  const blobs = new Map<string, number>();
  const children: Descriptor[] = [];
  for (const platform of platforms) {
    const layers = (options.layerSizes ?? [32 * 1024]).map(randomLayer);
    const config = imageConfig(platform, layers);
    const manifest = json({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: describe(MEDIA_TYPES.ociConfig, config),
      layers: layers.map((layer) => describe(MEDIA_TYPES.ociLayer, layer.blob)),
    });
    for (const blob of [config, ...layers.map((layer) => layer.blob)]) blobs.set(writer.add(blob), blob.length);
    manifests.set(writer.add(manifest), manifest);
    children.push({ ...describe(MEDIA_TYPES.ociManifest, manifest), platform });
  }
  const index = json({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: children });
  writer.add(index);
  const descriptor = describe(MEDIA_TYPES.ociIndex, index);
  await writer.write(dir, descriptor, tag);
  return {
    path: dir,
    reference: `oci:${dir}:${tag}`,
    descriptor,
    manifests: new Map([[descriptor.digest, index], ...manifests]),
    blobs,
  };
}

export interface ArtifactOptions {
  subject: Descriptor;
  artifactType?: string;
  tag?: string;
}

export interface BuiltArtifact extends BuiltImage {
  artifactType: string;
}

/**
 * An OCI artifact (image-spec v1.1): an image manifest with `artifactType`, the empty descriptor as
 * config, one JSON layer, and `subject` pointing at another manifest; as an `oci:` layout.
 */
export async function buildOciArtifact(dir: string, options: ArtifactOptions): Promise<BuiltArtifact> {
  const artifactType = options.artifactType ?? "application/vnd.example.sbom";
  const tag = options.tag ?? "sbom";
  const writer = new OciLayoutWriter();
  const empty = Buffer.from("{}");
  if (sha256(empty) !== EMPTY_DESCRIPTOR.digest) throw new Error("the empty descriptor's digest is wrong");
  const document = json({ sbom: "portcullis test", id: randomBytes(16).toString("hex") });
  writer.add(empty);
  writer.add(document);
  const { mediaType, digest, size } = options.subject;
  const manifest = json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    artifactType,
    config: EMPTY_DESCRIPTOR,
    layers: [
      {
        ...describe(`${artifactType}.v1+json`, document),
        annotations: { "org.opencontainers.image.title": "sbom.json" },
      },
    ],
    subject: { mediaType, digest, size },
    annotations: { "org.opencontainers.image.created": new Date().toISOString() },
  });
  writer.add(manifest);
  const descriptor = { ...describe(MEDIA_TYPES.ociManifest, manifest), artifactType };
  await writer.write(dir, descriptor, tag);
  return {
    path: dir,
    reference: `oci:${dir}:${tag}`,
    descriptor,
    artifactType,
    manifests: new Map([[descriptor.digest, manifest]]),
    blobs: new Map([
      [EMPTY_DESCRIPTOR.digest, EMPTY_DESCRIPTOR.size],
      [sha256(document), document.length],
    ]),
  };
}

export interface RootfsTar {
  path: string;
  /** digest of the tar as written */
  digest: string;
  /** The random line in its `etc/portcullis-test-id`, which tells this image's files from any other's. */
  marker: string;
}

/** An uncompressed root filesystem tar for `docker import`, with a random marker file and `randomSize` random bytes. */
export async function buildRootfsTar(path: string, randomSize = 64 * 1024): Promise<RootfsTar> {
  const marker = randomBytes(16).toString("hex");
  const tar = createTar([
    { path: "etc/" },
    { path: "etc/portcullis-test-id", content: Buffer.from(marker + "\n") },
    { path: "data/" },
    { path: "data/random.bin", content: randomBytes(randomSize) },
    { path: "hello.txt", content: Buffer.from("hello from a portcullis test image\n") },
  ]);
  await writeFile(path, tar);
  return { path, digest: sha256(tar), marker };
}
