import { parseDigest, type Digest } from "./digest.js";
import { RegistryError } from "./errors.js";
import { isIndexType, isManifestType, mediaTypes } from "./media-types.js";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
  [field: string]: unknown;
}

/** A manifest that has been parsed and checked for shape; what it references is checked by the store. */
export interface ParsedManifest {
  mediaType: string;
  /** Blobs that must be in the repository: config and layers of an image manifest. */
  blobs: Digest[];
  /** Manifests that must be in the repository: the children of an index. */
  manifests: Digest[];
  /** What the manifest stores in all: its config and layers, or the manifests an index lists. */
  totalSize: number;
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
  configMediaType?: string;
}

export const maxManifestBytes = 4 * 1024 * 1024;
/**
 * Descriptors one manifest may list (layers and config, or an index's manifests). Real images stay far below
 * it (overlay mounts cap at 128 layers); each one costs a storage look-up when the manifest is pushed.
 */
export const maxManifestReferences = 1_000;

const invalid = (message: string, detail?: unknown) => new RegistryError("MANIFEST_INVALID", message, detail);

/**
 * Parses a pushed manifest. `contentType` is the request's Content-Type; the spec requires it to agree with
 * the manifest's own `mediaType` when both are present (spec.md, "Pushing Manifests").
 */
export function parseManifest(content: Buffer, contentType: string | undefined): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(content.toString("utf8"));
  } catch (error) {
    throw invalid("manifest is not valid JSON", { reason: (error as Error).message });
  }
  if (!isObject(json)) throw invalid("manifest must be a JSON object");
  if (json.schemaVersion !== 2)
    throw invalid("unsupported manifest schemaVersion", { schemaVersion: json.schemaVersion });

  const declared = typeof json.mediaType === "string" ? json.mediaType : undefined;
  const header = contentType?.split(";")[0]?.trim().toLowerCase();
  const headerNames = header && isManifestType(header) ? header : undefined;
  if (declared && headerNames && declared !== headerNames) {
    throw invalid("Content-Type does not match the manifest's mediaType", { contentType: header, mediaType: declared });
  }
  const mediaType = declared ?? headerNames ?? guessMediaType(json);
  if (!mediaType || !isManifestType(mediaType)) {
    throw invalid("unknown manifest media type", { mediaType: declared ?? header ?? null });
  }

  const parsed: ParsedManifest = { mediaType, blobs: [], manifests: [], totalSize: 0 };
  const counted = (value: unknown, field: string) => {
    const digest = descriptorDigest(value, field);
    parsed.totalSize += (value as Descriptor).size;
    return digest;
  };
  const listed = isIndexType(mediaType) ? json.manifests : json.layers;
  if (Array.isArray(listed) && listed.length > maxManifestReferences) {
    throw invalid(`manifest lists ${listed.length} descriptors, more than the limit of ${maxManifestReferences}`, {
      limit: maxManifestReferences,
    });
  }
  if (isIndexType(mediaType)) {
    if (!Array.isArray(json.manifests)) throw invalid("index has no manifests list");
    parsed.manifests = json.manifests.map((entry, i) => counted(entry, `manifests[${i}]`));
  } else {
    const config = json.config;
    parsed.blobs.push(counted(config, "config"));
    parsed.configMediaType = (config as Descriptor).mediaType;
    if (!Array.isArray(json.layers)) throw invalid("manifest has no layers list");
    json.layers.forEach((layer, i) => {
      const digest = counted(layer, `layers[${i}]`);
      if (!isForeign(layer as Descriptor)) parsed.blobs.push(digest);
    });
  }
  if (json.subject !== undefined) {
    descriptorDigest(json.subject, "subject");
    parsed.subject = json.subject as Descriptor;
  }
  if (typeof json.artifactType === "string") parsed.artifactType = json.artifactType;
  if (isObject(json.annotations)) parsed.annotations = json.annotations as Record<string, string>;
  return parsed;
}

/** The media type to answer a stored manifest with: its own field, else what its shape says. */
export function storedMediaType(content: Buffer): string {
  try {
    const json: unknown = JSON.parse(content.toString("utf8"));
    if (isObject(json))
      return typeof json.mediaType === "string" ? json.mediaType : (guessMediaType(json) ?? mediaTypes.ociManifest);
  } catch {
    // A stored manifest that is not JSON (a schema1 signed manifest) is served as opaque bytes.
  }
  return "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

function guessMediaType(json: Record<string, unknown>): string | undefined {
  if (Array.isArray(json.manifests)) return mediaTypes.ociIndex;
  if (isObject(json.config)) return mediaTypes.ociManifest;
  return undefined;
}

function descriptorDigest(value: unknown, field: string): Digest {
  if (!isObject(value) || typeof value.mediaType !== "string" || typeof value.digest !== "string") {
    throw invalid(`${field} is not a valid descriptor`);
  }
  if (typeof value.size !== "number" || !Number.isSafeInteger(value.size) || value.size < 0) {
    throw invalid(`${field} has an invalid size`);
  }
  try {
    return parseDigest(value.digest);
  } catch {
    throw invalid(`${field} has an invalid digest`, { digest: value.digest });
  }
}

function isForeign(layer: Descriptor): boolean {
  return layer.mediaType === mediaTypes.dockerForeignLayer || (Array.isArray(layer.urls) && layer.urls.length > 0);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
