import { readLink } from "./blob-store.js";
import { newHash, parseDigest, type Digest, type DigestAlgorithm } from "./digest.js";
import { repositoryDirectories } from "./catalog.js";
import type { StorageDriver } from "./storage/driver.js";
import { layout } from "./storage/layout.js";
import { uploadExpiryMs } from "./upload-store.js";

export type ProblemKind =
  | "blob-corrupt"
  | "blob-incomplete"
  | "layer-link-dangling"
  | "revision-dangling"
  | "tag-dangling"
  | "temp-file"
  | "upload-abandoned";

export interface Problem {
  kind: ProblemKind;
  /** The storage path the problem is at (relative to the root). */
  path: string;
  detail: string;
  /** With `repair`: whether it was put right. */
  repaired: boolean;
}

export interface FsckOptions {
  repair: boolean;
  now?: () => number;
}

/** Temp files of an atomic write (`NAME.<uuid>.tmp`), and half-made directories, older than this belong to no write still running. */
const inFlightMs = 10 * 60 * 1000;
const tempFilePattern = /\.[0-9a-f-]{36}\.tmp$/;

/**
 * Checks a storage root for what a crash, a full disk or a hand edit can leave behind, and with `repair`
 * removes what is safe to remove: nothing it removes was ever served whole, or can be served at all. Blobs
 * whose bytes no longer match their digest are removed too, so a client pushes them again rather than pulling
 * damaged layers. What a repair never does is invent data: a lost blob stays lost, and is reported.
 */
export async function checkStorage(storage: StorageDriver, options: FsckOptions): Promise<Problem[]> {
  const now = options.now ?? Date.now;
  const problems: Problem[] = [];
  const found = async (kind: ProblemKind, path: string, detail: string, repair: () => Promise<void>) => {
    if (options.repair) await repair();
    problems.push({ kind, path, detail, repaired: options.repair });
  };
  const remove = (path: string) => () => storage.delete(path);
  // Younger than this, a half-made thing may be a write still running in a server using the same root.
  const isOld = async (path: string) => now() - ((await storage.stat(path))?.modified.getTime() ?? now()) > inFlightMs;
  /** Temp files of writes that never finished, in one directory. */
  async function tempFilesIn(dir: string): Promise<void> {
    for (const entry of await storage.list(dir)) {
      const path = `${dir}/${entry}`;
      if (tempFilePattern.test(entry) && (await isOld(path))) {
        await found("temp-file", path, "left by a write that never finished", remove(path));
      }
    }
  }

  async function blobExists(digest: Digest): Promise<boolean> {
    const info = await storage.stat(layout.blobData(digest));
    return info !== undefined && !info.isDirectory;
  }

  async function checkBlobs(): Promise<void> {
    for (const algorithm of await storage.list(layout.blobsRoot)) {
      for (const prefix of await storage.list(`${layout.blobsRoot}/${algorithm}`)) {
        for (const hex of await storage.list(`${layout.blobsRoot}/${algorithm}/${prefix}`)) {
          await checkBlob(`${algorithm}:${hex}`, `${layout.blobsRoot}/${algorithm}/${prefix}/${hex}`);
        }
      }
    }
  }

  async function checkBlob(text: string, dir: string): Promise<void> {
    let digest: Digest;
    try {
      digest = parseDigest(text);
    } catch {
      return; // not a blob directory this registry wrote; left alone
    }
    await tempFilesIn(dir);
    if (!(await blobExists(digest))) {
      if (await isOld(dir)) await found("blob-incomplete", dir, `${digest.text} has no data`, remove(dir));
      return;
    }
    const actual = await hashOf(storage, layout.blobData(digest), digest.algorithm);
    if (actual !== digest.hex) {
      await found(
        "blob-corrupt",
        layout.blobData(digest),
        `content hashes to ${digest.algorithm}:${actual}`,
        remove(dir),
      );
    }
  }

  /** Link files under `root` (`ALG/HEX/link`), with stray temp files beside them. */
  async function links(root: string, onLink: (path: string, digest: Digest | undefined) => Promise<void>) {
    for (const algorithm of await storage.list(root)) {
      for (const hex of await storage.list(`${root}/${algorithm}`)) {
        const dir = `${root}/${algorithm}/${hex}`;
        await tempFilesIn(dir);
        await onLink(dir, await readLink(storage, `${dir}/link`));
      }
    }
  }

  async function checkRepository(name: string): Promise<void> {
    const repo = layout.repository(name);
    // A link directory with no link yet may be a write still running: only an old one counts as damaged.
    const dangling = async (dir: string, digest: Digest | undefined) =>
      digest ? !(await blobExists(digest)) : await isOld(dir);
    await links(`${repo}/_layers`, async (dir, digest) => {
      if (await dangling(dir, digest)) {
        await found("layer-link-dangling", dir, `${name} links ${digest?.text ?? "a damaged link"}`, remove(dir));
      }
    });
    const revisions = `${repo}/_manifests/revisions`;
    await links(revisions, async (dir, digest) => {
      if (await dangling(dir, digest)) {
        await found("revision-dangling", dir, `${name} lists ${digest?.text ?? "a damaged link"}`, remove(dir));
      }
    });
    const hasRevision = async (digest: Digest) =>
      (await readLink(storage, layout.revisionLink(name, digest)))?.text === digest.text && (await blobExists(digest));
    for (const tag of await storage.list(layout.tagsRoot(name))) {
      await tempFilesIn(`${layout.tagDir(name, tag)}/current`);
      await links(`${layout.tagDir(name, tag)}/index`, async () => undefined);
      const digest = await readLink(storage, layout.tagCurrentLink(name, tag));
      if ((!digest && (await isOld(layout.tagDir(name, tag)))) || (digest && !(await hasRevision(digest)))) {
        const what = digest ? `points at ${digest.text}, which is not stored` : "has no current link";
        await found(
          "tag-dangling",
          layout.tagDir(name, tag),
          `${name}:${tag} ${what}`,
          remove(layout.tagDir(name, tag)),
        );
      }
    }
    for (const id of await storage.list(layout.uploadsRoot(name))) {
      const dir = layout.uploadDir(name, id);
      const started = await storage.stat(layout.uploadStartedAt(name, id));
      const data = await storage.stat(layout.uploadData(name, id));
      const active = Math.max(
        started?.modified.getTime() ?? 0,
        data?.modified.getTime() ?? 0,
        started || data ? 0 : ((await storage.stat(dir))?.modified.getTime() ?? 0),
      );
      if (now() - active > uploadExpiryMs) {
        await found("upload-abandoned", dir, `${name}: no activity for ${hours(now() - active)} h`, remove(dir));
      }
    }
  }

  await checkBlobs();
  for (const name of await repositoryDirectories(storage)) await checkRepository(name);
  return problems;
}

async function hashOf(storage: StorageDriver, path: string, algorithm: DigestAlgorithm): Promise<string> {
  const hash = newHash(algorithm);
  const stream = await storage.reader(path);
  if (stream) for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

const hours = (ms: number) => Math.floor(ms / 3_600_000);
