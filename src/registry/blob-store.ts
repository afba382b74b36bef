import type { Writable } from "node:stream";
import { parseDigest, type Digest } from "./digest.js";
import { blobUnknown } from "./errors.js";
import { keepFromCollection } from "./gc-candidates.js";
import type { ByteRange, StorageDriver } from "./storage/driver.js";
import { layout } from "./storage/layout.js";

export interface BlobInfo {
  digest: Digest;
  size: number;
}

/**
 * Blobs are stored once, content-addressed, and reach a repository through a link under `_layers`; a blob
 * is visible in a repository only when both exist.
 */
export function createBlobStore(storage: StorageDriver) {
  async function stat(name: string, digest: Digest): Promise<BlobInfo | undefined> {
    await keepFromCollection(storage, digest);
    const link = await storage.getContent(layout.layerLink(name, digest));
    if (!link || link.toString("utf8").trim() !== digest.text) return undefined;
    const info = await storage.stat(layout.blobData(digest));
    if (!info || info.isDirectory) return undefined;
    return { digest, size: info.size };
  }

  /** Whether the blob's content is stored at all, in any repository. */
  async function exists(digest: Digest): Promise<boolean> {
    await keepFromCollection(storage, digest);
    const info = await storage.stat(layout.blobData(digest));
    return info !== undefined && !info.isDirectory;
  }

  return {
    stat,
    exists,

    async require(name: string, digest: Digest): Promise<BlobInfo> {
      const info = await stat(name, digest);
      if (!info) throw blobUnknown(digest.text);
      return info;
    },

    /** Writes the blob, or a byte range of it, into a response. */
    async send(digest: Digest, sink: Writable, range?: ByteRange): Promise<void> {
      if (!(await storage.send(layout.blobData(digest), sink, range))) throw blobUnknown(digest.text);
    },

    async link(name: string, digest: Digest): Promise<void> {
      await storage.putContent(layout.layerLink(name, digest), digest.text);
    },

    async unlink(name: string, digest: Digest): Promise<void> {
      if (!(await stat(name, digest))) throw blobUnknown(digest.text);
      await storage.delete(layout.layerLinkDir(name, digest));
    },

    /**
     * Moves a finished, verified file into the blob store and links it into repository `name`, their waits
     * for the disk overlapped. Concurrent commits of one digest both succeed.
     */
    async commitAndLink(path: string, digest: Digest, name: string): Promise<void> {
      await keepFromCollection(storage, digest);
      await storage.moveAndPut(path, layout.blobData(digest), layout.layerLink(name, digest), digest.text);
    },

    /** Stores small content (a manifest) under its digest. */
    async put(digest: Digest, content: Buffer): Promise<void> {
      if (await exists(digest)) return;
      await storage.putContent(layout.blobData(digest), content);
    },

    async read(digest: Digest): Promise<Buffer | undefined> {
      return storage.getContent(layout.blobData(digest));
    },
  };
}

export type BlobStore = ReturnType<typeof createBlobStore>;

/** Reads a link file (`sha256:<hex>`) into a digest; a damaged link reads as absent. */
export async function readLink(storage: StorageDriver, path: string): Promise<Digest | undefined> {
  const content = await storage.getContent(path);
  if (!content) return undefined;
  try {
    return parseDigest(content.toString("utf8").trim());
  } catch {
    return undefined;
  }
}
