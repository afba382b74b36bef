import type { Logger } from "../log.js";
import { readLink } from "./blob-store.js";
import { parseDigest, type Digest } from "./digest.js";
import { listBlobs } from "./inventory.js";
import { lockKeys, withLocks } from "./locks.js";
import { parseManifest, type ParsedManifest } from "./manifest.js";
import { repositoryDirectories } from "./catalog.js";
import type { StorageDriver } from "./storage/driver.js";
import { layout } from "./storage/layout.js";

export interface GcReport {
  dryRun: boolean;
  manifests: { repository: string; digest: string; size: number }[];
  blobs: { digest: string; size: number }[];
  uploads: { repository: string; id: string; size: number }[];
  /** Bytes the sweep frees (or would free). */
  bytes: number;
  /** Unreferenced blobs this run marked; a later run removes those still unused then. */
  candidates: { digest: string; size: number }[];
}

export interface GcOptions {
  dryRun: boolean;
  /** Also remove manifests no tag reaches (through an index or as a referrer of a live manifest). */
  untagged?: boolean | ((repository: string) => boolean);
  /**
   * Wait this long after marking candidates, then mark again and remove the candidates nothing used
   * meanwhile, in this same run (`portcullis gc`). Zero leaves them to the next run (a schedule).
   */
  settleMs?: number;
}

export interface GarbageCollector {
  run(options: GcOptions): Promise<GcReport>;
}

/** Manifests by digest, read once a run: what a digest names never changes. */
type ManifestContents = Map<string, { size: number; manifest?: ParsedManifest }>;

/** An upload with no activity for this long is abandoned, whatever the grace period for finished blobs. */
export const defaultUploadGraceMs = 60 * 60 * 1000;

/**
 * Online mark and sweep over registry:2's layout while the server keeps serving.
 *
 * Mark: every tag and every manifest revision of every repository (or, with `untagged`, only what tags
 * reach), the children of each index, the config and layers of each image, and referrers whose subject is
 * alive. Sweep: revisions no longer alive (`untagged`), blobs nothing references with their `_layers` links,
 * and uploads idle past their grace period (under the upload's own lock, so one in flight is never touched).
 *
 * The blob race (an upload finished before a run, the manifest naming it arrives after the sweep) is closed by
 * two-phase candidacy (gc-candidates.ts): a blob found unreferenced and older than the grace period is only
 * marked; a later run removes it, under the blob's lock, if nothing used it in between. With a zero grace
 * period a blob therefore survives at least one whole interval between runs after its last use.
 *
 * The manifest race (with `untagged`: a put has linked a revision but not yet its tag, which the mark read
 * before) is closed by the manifest's lock: a put holds it from the revision link to the tag, and an index's
 * put holds its children's too. gc takes the locks of every revision it is about to remove, marks the
 * repository again and removes only those still unreached; a revision linked since the first mark counts
 * as reached, with its children. Untagged outside a put, with a zero grace period, is removable.
 */
export function createGarbageCollector(deps: {
  storage: StorageDriver;
  graceMs: number;
  uploadGraceMs?: number;
  now?: () => number;
  logger?: Logger;
}): GarbageCollector {
  const { storage } = deps;
  const now = deps.now ?? Date.now;
  const uploadGraceMs = deps.uploadGraceMs ?? defaultUploadGraceMs;

  async function readManifest(digest: Digest): Promise<{ size: number; manifest?: ParsedManifest } | undefined> {
    const content = await storage.getContent(layout.blobData(digest));
    if (!content) return undefined;
    try {
      return { size: content.length, manifest: parseManifest(content, undefined) };
    } catch {
      return { size: content.length };
    }
  }

  async function revisionsOf(name: string): Promise<{ digest: Digest; modified: number }[]> {
    const found: { digest: Digest; modified: number }[] = [];
    for (const algorithm of ["sha256", "sha512"] as const) {
      const root = layout.revisionsRoot(name, algorithm);
      for (const hex of await storage.list(root)) {
        const digest = await readLink(storage, `${root}/${hex}/link`);
        const info = await storage.stat(`${root}/${hex}/link`);
        if (digest) found.push({ digest, modified: info?.modified.getTime() ?? now() });
      }
    }
    return found;
  }

  async function tagged(name: string): Promise<Digest[]> {
    const found: Digest[] = [];
    for (const tag of await storage.list(layout.tagsRoot(name))) {
      const digest = await readLink(storage, layout.tagCurrentLink(name, tag));
      if (digest) found.push(digest);
    }
    return found;
  }

  /**
   * The revisions of one repository and the digests that stay: what its tags reach (every revision, unless
   * `untagged`), revisions linked within the grace period or since `listed` was read, the children of an
   * index that stays and the referrers of a manifest that stays. `contents` caches manifests by digest.
   */
  async function mark(name: string, untagged: boolean, contents: ManifestContents, listed?: Set<string>) {
    const revisions = await revisionsOf(name);
    for (const { digest } of revisions) {
      if (contents.has(digest.text)) continue;
      const entry = await readManifest(digest);
      if (entry) contents.set(digest.text, entry);
    }
    const alive = new Set<string>();
    const queue: string[] = [];
    const keep = (text: string) => {
      if (alive.has(text)) return;
      alive.add(text);
      queue.push(text);
    };
    const roots = untagged ? (await tagged(name)).map((d) => d.text) : revisions.map((r) => r.digest.text);
    // A revision pushed within the grace period may be the child of an index still being pushed.
    for (const { digest, modified } of revisions) {
      if (now() - modified < deps.graceMs || (listed && !listed.has(digest.text))) keep(digest.text);
    }
    for (const text of roots) keep(text);
    for (;;) {
      while (queue.length > 0) {
        const manifest = contents.get(queue.pop() as string)?.manifest;
        for (const child of manifest?.manifests ?? []) keep(child.text);
      }
      let grew = false;
      for (const { digest } of revisions) {
        const subject = contents.get(digest.text)?.manifest?.subject?.digest;
        if (!alive.has(digest.text) && subject && alive.has(subject)) {
          keep(digest.text);
          grew = true;
        }
      }
      if (!grew) break;
    }
    return { revisions, alive };
  }

  /** Removes (or lists) the revisions of one repository that no longer stay, and adds the blobs of the rest. */
  async function sweepManifests(
    name: string,
    untagged: boolean,
    dryRun: boolean,
    contents: ManifestContents,
    liveBlobs: Set<string>,
    report: GcReport,
  ) {
    let marked = await mark(name, untagged, contents);
    // A revision whose manifest cannot be read stays: it is fsck's to repair, not gc's to guess about.
    const unreached = (m: typeof marked) =>
      m.revisions.filter(({ digest }) => !m.alive.has(digest.text) && contents.has(digest.text));
    let removals = unreached(marked);
    if (removals.length > 0 && !dryRun) {
      const first = marked;
      await withLocks(
        storage,
        removals.map(({ digest }) => lockKeys.manifest(name, digest)),
        async () => {
          // Only a put holding one of these locks can have reached a removal since the first mark: marking
          // again now sees what it wrote. A revision linked since the first mark stays, with its children.
          marked = await mark(name, untagged, contents, new Set(first.revisions.map((r) => r.digest.text)));
          const still = new Set(unreached(marked).map(({ digest }) => digest.text));
          removals = removals.filter(({ digest }) => still.has(digest.text));
          for (const { digest } of removals) await storage.delete(layout.revisionDir(name, digest));
        },
      );
    }
    const removed = new Set(removals.map(({ digest }) => digest.text));
    for (const { digest } of marked.revisions) {
      const entry = contents.get(digest.text);
      if (removed.has(digest.text)) {
        report.manifests.push({ repository: name, digest: digest.text, size: entry?.size ?? 0 });
        continue;
      }
      liveBlobs.add(digest.text);
      for (const blob of entry?.manifest?.blobs ?? []) liveBlobs.add(blob.text);
    }
  }

  async function sweepUploads(name: string, dryRun: boolean, report: GcReport) {
    for (const id of await storage.list(layout.uploadsRoot(name))) {
      const idle = async () => {
        const started = await storage.stat(layout.uploadStartedAt(name, id));
        const data = await storage.stat(layout.uploadData(name, id));
        const dir = await storage.stat(layout.uploadDir(name, id));
        const active = Math.max(
          started?.modified.getTime() ?? 0,
          data?.modified.getTime() ?? 0,
          dir?.modified.getTime() ?? 0,
        );
        return { abandoned: now() - active > uploadGraceMs, size: data?.size ?? 0 };
      };
      await storage.withLock(lockKeys.upload(name, id), async () => {
        const { abandoned, size } = await idle();
        if (!abandoned) return;
        if (!dryRun) await storage.delete(layout.uploadDir(name, id));
        report.uploads.push({ repository: name, id, size });
        report.bytes += size;
      });
    }
  }

  async function layerLinkHolders(names: string[]): Promise<Map<string, string[]>> {
    const holders = new Map<string, string[]>();
    for (const name of names) {
      const root = `${layout.repository(name)}/_layers`;
      for (const algorithm of await storage.list(root)) {
        for (const hex of await storage.list(`${root}/${algorithm}`)) {
          const text = `${algorithm}:${hex}`;
          holders.set(text, [...(holders.get(text) ?? []), name]);
        }
      }
    }
    return holders;
  }

  async function sweepBlobs(names: string[], liveBlobs: Set<string>, dryRun: boolean, report: GcReport) {
    const holders = await layerLinkHolders(names);
    for (const { digest, size, modified } of await listBlobs(storage)) {
      const candidate = layout.gcCandidate(digest);
      if (liveBlobs.has(digest.text)) {
        if (!dryRun && (await storage.stat(candidate))) await storage.delete(candidate);
        continue;
      }
      if (now() - modified.getTime() < deps.graceMs) continue;
      if (!(await storage.stat(candidate))) {
        if (!dryRun) await storage.putContent(candidate, new Date(now()).toISOString(), { durable: false });
        report.candidates.push({ digest: digest.text, size });
        if (dryRun) {
          report.blobs.push({ digest: digest.text, size });
          report.bytes += size;
        }
        continue;
      }
      if (dryRun) {
        report.blobs.push({ digest: digest.text, size });
        report.bytes += size;
        continue;
      }
      const removed = await storage.withLock(lockKeys.blob(digest), async () => {
        // A use since the check above withdrew the candidacy: the blob stays.
        if (!(await storage.stat(candidate))) return false;
        for (const name of holders.get(digest.text) ?? []) await storage.delete(layout.layerLinkDir(name, digest));
        await storage.delete(layout.blobDir(digest));
        await storage.delete(candidate);
        return true;
      });
      if (removed) {
        report.blobs.push({ digest: digest.text, size });
        report.bytes += size;
      }
    }
    if (!dryRun) await dropStaleCandidates();
  }

  /** Candidates whose blob is gone (removed by hand, or by another registry on the same root). */
  async function dropStaleCandidates() {
    for (const algorithm of await storage.list(layout.gcCandidatesRoot)) {
      for (const hex of await storage.list(`${layout.gcCandidatesRoot}/${algorithm}`)) {
        let digest: Digest;
        try {
          digest = parseDigest(`${algorithm}:${hex}`);
        } catch {
          await storage.delete(`${layout.gcCandidatesRoot}/${algorithm}/${hex}`);
          continue;
        }
        if (!(await storage.stat(layout.blobData(digest)))) await storage.delete(layout.gcCandidate(digest));
      }
    }
  }

  return {
    async run(options) {
      const started = now();
      const report = await pass(options);
      if (!options.dryRun && (options.settleMs ?? 0) > 0 && report.candidates.length > 0) {
        await new Promise((resolve) => setTimeout(resolve, options.settleMs));
        const second = await pass(options);
        report.manifests.push(...second.manifests);
        report.blobs.push(...second.blobs);
        report.uploads.push(...second.uploads);
        report.bytes += second.bytes;
        report.candidates = second.candidates;
      }
      deps.logger?.info(
        {
          dryRun: options.dryRun,
          manifests: report.manifests.length,
          blobs: report.blobs.length,
          uploads: report.uploads.length,
          bytes: report.bytes,
          ms: now() - started,
        },
        "garbage collection finished",
      );
      return report;
    },
  };

  async function pass(options: GcOptions): Promise<GcReport> {
    const report: GcReport = {
      dryRun: options.dryRun,
      manifests: [],
      blobs: [],
      uploads: [],
      bytes: 0,
      candidates: [],
    };
    const names = await repositoryDirectories(storage);
    const liveBlobs = new Set<string>();
    const untagged = options.untagged ?? false;
    const contents: ManifestContents = new Map();
    for (const name of names) {
      const removesUntagged = typeof untagged === "function" ? untagged(name) : untagged;
      await sweepManifests(name, removesUntagged, options.dryRun, contents, liveBlobs, report);
    }
    for (const name of names) await sweepUploads(name, options.dryRun, report);
    await sweepBlobs(names, liveBlobs, options.dryRun, report);
    return report;
  }
}
