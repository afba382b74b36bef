import { statSync } from "node:fs";
import { auditFiles } from "../audit/chain-file.js";
import { readRecords } from "../audit/reader.js";
import { createBlobStore } from "./blob-store.js";
import { createCatalog } from "./catalog.js";
import { parseDigest, type Digest } from "./digest.js";
import { nameUnknown, RegistryError } from "./errors.js";
import { parseManifest, storedMediaType, type ParsedManifest } from "./manifest.js";
import { createManifestStore } from "./manifest-store.js";
import { isIndexType } from "./media-types.js";
import type { StorageDriver } from "./storage/driver.js";
import { layout } from "./storage/layout.js";

export interface ImageSummary {
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
  /** Bytes of the manifest, its config and layers (for an index: of every child too), each blob counted once. */
  size: number;
  /** "linux/amd64", "linux/arm64/v8", ...; empty when the config does not say. */
  platforms: string[];
  /** From the audit log's push records (ISO 8601), when known. */
  pushedAt?: string;
  pushedBy?: string;
}

export interface Inventory {
  /** Every repository, sorted. */
  repositories(): Promise<string[]>;
  /**
   * One page of a repository's tags, sorted by tag, starting after `last`; `next` is the last tag of the page
   * when more follow. Throws RegistryError NAME_UNKNOWN for a repository that does not exist. Reads only the
   * page's manifests.
   */
  tags(repository: string, page?: { last?: string; n?: number }): Promise<{ images: ImageSummary[]; next?: string }>;
  image(repository: string, tag: string): Promise<ImageSummary | undefined>;
  /** Removes a tag (the manifest stays for other tags / digest pulls); false when there was no such tag. */
  removeTag(repository: string, tag: string): Promise<boolean>;
  /** Bytes and count of every blob in storage. */
  usage(): Promise<{ bytes: number; blobs: number }>;
  /** Every tag name of a repository, sorted, without reading a manifest. */
  tagNames(repository: string): Promise<string[]>;
  /** Push and pull times per tag, from the audit log (empty without one). */
  activity(): AuditActivity;
}

export interface TagActivity {
  pushedAt?: string;
  pushedBy?: string;
  pushedDigest?: string;
  pulledAt?: string;
}

export interface AuditActivity {
  /** `repository\ntag` → what the audit log says about that tag. */
  tags: Map<string, TagActivity>;
  /** `repository\ndigest` → the last pull of that manifest, by digest or by a tag on it. */
  digestPulls: Map<string, string>;
}

export const defaultPageSize = 100;

export function createInventory(deps: { storage: StorageDriver; auditDir?: string }): Inventory {
  const { storage } = deps;
  const blobs = createBlobStore(storage);
  const manifests = createManifestStore(storage, blobs);
  const catalog = createCatalog(storage);
  const activity = createAuditActivity(deps.auditDir);

  async function readManifest(digest: Digest): Promise<{ content: Buffer; manifest?: ParsedManifest } | undefined> {
    const content = await blobs.read(digest);
    if (!content) return undefined;
    try {
      return { content, manifest: parseManifest(content, undefined) };
    } catch {
      return { content };
    }
  }

  async function platformOf(config: Digest): Promise<string | undefined> {
    const info = await storage.stat(layout.blobData(config));
    // A config is a small JSON document; anything large is an artifact's payload, not an image config.
    if (!info || info.isDirectory || info.size > 1024 * 1024) return undefined;
    try {
      const json = JSON.parse((await blobs.read(config))?.toString("utf8") ?? "") as Record<string, unknown>;
      return platformText(json);
    } catch {
      return undefined;
    }
  }

  /** Size (each blob once) and platforms of a manifest and, for an index, of its children. */
  async function describe(digest: Digest) {
    const counted = new Map<string, number>();
    const platforms: string[] = [];
    const root = await readManifest(digest);
    if (!root) return undefined;
    const visit = async (d: Digest, depth: number, entry?: { content: Buffer; manifest?: ParsedManifest }) => {
      if (counted.has(d.text) || depth > 4) return;
      const found = entry ?? (await readManifest(d));
      if (!found) return;
      counted.set(d.text, found.content.length);
      const parsed = found.manifest;
      if (!parsed) return;
      if (isIndexType(parsed.mediaType)) {
        for (const child of parsed.manifests) await visit(child, depth + 1);
        return;
      }
      for (const blob of parsed.blobs) {
        if (counted.has(blob.text)) continue;
        counted.set(blob.text, (await storage.stat(layout.blobData(blob)))?.size ?? 0);
      }
      const config = parsed.blobs[0];
      const platform = config ? await platformOf(config) : undefined;
      if (platform && !platforms.includes(platform)) platforms.push(platform);
    };
    await visit(digest, 0, root);
    const size = [...counted.values()].reduce((a, b) => a + b, 0);
    return { size, platforms, mediaType: root.manifest?.mediaType ?? storedMediaType(root.content) };
  }

  async function summary(repository: string, tag: string): Promise<ImageSummary | undefined> {
    const digest = await readTagLink(storage, repository, tag);
    if (!digest) return undefined;
    const revision = await storage.getContent(layout.revisionLink(repository, digest));
    if (revision?.toString("utf8").trim() !== digest.text) return undefined;
    const described = await describe(digest);
    if (!described) return undefined;
    const seen = activity().tags.get(`${repository}\n${tag}`);
    const pushed = seen?.pushedDigest === undefined || seen.pushedDigest === digest.text ? seen : undefined;
    return {
      repository,
      tag,
      digest: digest.text,
      ...described,
      ...(pushed?.pushedAt ? { pushedAt: pushed.pushedAt } : {}),
      ...(pushed?.pushedBy ? { pushedBy: pushed.pushedBy } : {}),
    };
  }

  async function tagNames(repository: string): Promise<string[]> {
    const entries = await storage.list(layout.repository(repository));
    if (!entries.includes("_manifests") && !entries.includes("_layers")) throw nameUnknown(repository);
    return (await storage.list(layout.tagsRoot(repository))).sort(byCodePoint);
  }

  return {
    repositories: () => catalog.repositories(),
    tagNames,
    activity,

    async tags(repository, page = {}) {
      const n = Math.max(1, Math.min(page.n ?? defaultPageSize, 10_000));
      const names = await tagNames(repository);
      let start = 0;
      if (page.last !== undefined) {
        const last = page.last;
        start = names.findIndex((t) => byCodePoint(t, last) > 0);
        if (start < 0) start = names.length;
      }
      const images: ImageSummary[] = [];
      let index = start;
      for (; index < names.length && images.length < n; index++) {
        const image = await summary(repository, names[index] as string);
        if (image) images.push(image);
      }
      const more = index < names.length;
      const lastImage = images.at(-1);
      return { images, ...(more && lastImage ? { next: lastImage.tag } : {}) };
    },

    image: (repository, tag) => summary(repository, tag),

    async removeTag(repository, tag) {
      try {
        await manifests.delete(repository, { tag });
        return true;
      } catch (error) {
        if (error instanceof RegistryError && error.code === "MANIFEST_UNKNOWN") return false;
        throw error;
      }
    },

    async usage() {
      let bytes = 0;
      let count = 0;
      for (const { size } of await listBlobs(storage)) {
        bytes += size;
        count += 1;
      }
      return { bytes, blobs: count };
    },
  };
}

/** Every blob in storage with its size (blob directories without data are left out). */
export async function listBlobs(storage: StorageDriver): Promise<{ digest: Digest; size: number; modified: Date }[]> {
  const found: { digest: Digest; size: number; modified: Date }[] = [];
  for (const algorithm of await storage.list(layout.blobsRoot)) {
    for (const prefix of await storage.list(`${layout.blobsRoot}/${algorithm}`)) {
      for (const hex of await storage.list(`${layout.blobsRoot}/${algorithm}/${prefix}`)) {
        let digest: Digest;
        try {
          digest = parseDigest(`${algorithm}:${hex}`);
        } catch {
          continue;
        }
        const info = await storage.stat(layout.blobData(digest));
        if (info && !info.isDirectory) found.push({ digest, size: info.size, modified: info.modified });
      }
    }
  }
  return found;
}

async function readTagLink(storage: StorageDriver, repository: string, tag: string): Promise<Digest | undefined> {
  const content = await storage.getContent(layout.tagCurrentLink(repository, tag));
  if (!content) return undefined;
  try {
    return parseDigest(content.toString("utf8").trim());
  } catch {
    return undefined;
  }
}

function platformText(config: Record<string, unknown>): string | undefined {
  const os = typeof config.os === "string" ? config.os : undefined;
  const architecture = typeof config.architecture === "string" ? config.architecture : undefined;
  if (!os || !architecture) return undefined;
  const variant = typeof config.variant === "string" && config.variant ? `/${config.variant}` : "";
  return `${os}/${architecture}${variant}`;
}

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * What the audit log says about tags, read again only when an audit file's size changed, so paging through
 * a repository does not re-read a large log.
 */
export function createAuditActivity(auditDir: string | undefined): () => AuditActivity {
  let cachedKey = "";
  let cached: AuditActivity = { tags: new Map(), digestPulls: new Map() };
  return () => {
    if (!auditDir) return cached;
    const files = auditFiles(auditDir);
    const key = files.map((f) => `${f}:${sizeOf(f)}`).join("\n");
    if (key === cachedKey) return cached;
    const next: AuditActivity = { tags: new Map(), digestPulls: new Map() };
    const tagDigests = new Map<string, string>();
    for (const { record } of readRecords(auditDir)) {
      if (!record || record.result !== "success") continue;
      const repository = record.target?.repository;
      if (!repository) continue;
      const { tag, digest } = record.target ?? {};
      if (record.action === "push" && tag) {
        next.tags.set(`${repository}\n${tag}`, {
          ...next.tags.get(`${repository}\n${tag}`),
          pushedAt: record.time,
          pushedBy: record.actor.name,
          ...(digest ? { pushedDigest: digest } : {}),
        });
        if (digest) tagDigests.set(`${repository}\n${tag}`, digest);
      } else if (record.action === "pull" && (tag || digest)) {
        if (tag) {
          const entry = next.tags.get(`${repository}\n${tag}`) ?? {};
          next.tags.set(`${repository}\n${tag}`, { ...entry, pulledAt: record.time });
        }
        const pulled = digest ?? (tag ? tagDigests.get(`${repository}\n${tag}`) : undefined);
        if (pulled) next.digestPulls.set(`${repository}\n${pulled}`, record.time);
      }
    }
    cachedKey = key;
    cached = next;
    return cached;
  };
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return -1;
  }
}
