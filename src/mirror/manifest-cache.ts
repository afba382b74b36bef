import type { IncomingMessage } from "node:http";
import type { Logger } from "../log.js";
import { createBlobStore, readLink } from "../registry/blob-store.js";
import { digestOf, parseDigest, type Digest } from "../registry/digest.js";
import { manifestUnknown, RegistryError } from "../registry/errors.js";
import { readSmallBody } from "../registry/http.js";
import { lockKeys } from "../registry/locks.js";
import { maxManifestBytes } from "../registry/manifest.js";
import type { Reference } from "../registry/manifest-store.js";
import { mediaTypes } from "../registry/media-types.js";
import type { StorageDriver } from "../registry/storage/driver.js";
import { layout } from "../registry/storage/layout.js";
import type { UpstreamClient } from "../upstream/client.js";
import { askUpstream, describeFailure, upstreamUnavailable, wrongContent, type CacheFill } from "./upstream-answer.js";
import type { MirrorTarget } from "./routes.js";

/** Every manifest form we store, so the upstream never picks a lesser one for us. */
const accept = [
  mediaTypes.ociIndex,
  mediaTypes.dockerManifestList,
  mediaTypes.ociManifest,
  mediaTypes.dockerManifest,
].join(", ");

export interface ManifestCacheDeps {
  storage: StorageDriver;
  logger: Logger;
  now?: () => number;
}

/**
 * Brings a mirrored manifest into the built-in storage layout, so the built-in registry serves it: by tag
 * when the cached tag is older than its TTL (a HEAD first, a download only when the digest moved), by
 * digest when it is not stored. The manifest is written with the storage driver directly: the manifest
 * store's put insists on every referenced blob being present, which a cache fetches only when asked.
 */
export function createManifestCache({ storage, logger, now = Date.now }: ManifestCacheDeps) {
  const blobs = createBlobStore(storage);

  async function cachedRevision(name: string, digest: Digest | undefined): Promise<Digest | undefined> {
    if (!digest) return undefined;
    const link = await readLink(storage, layout.revisionLink(name, digest));
    return link?.text === digest.text && (await blobs.exists(digest)) ? digest : undefined;
  }

  /**
   * Stores a downloaded manifest and moves `tag` to it, under the manifest's lock and then the tag's, as the
   * manifest store's put does, so gc never removes the revision before its tag is there (gc.ts).
   */
  async function store(name: string, { digest, content }: Downloaded, tag?: string): Promise<CacheFill> {
    await storage.withLock(lockKeys.manifest(name, digest), async () => {
      await blobs.put(digest, content);
      await storage.putContent(layout.revisionLink(name, digest), digest.text);
      if (tag === undefined) return;
      await storage.withLock(lockKeys.tag(name, tag), async () => {
        await storage.putContent(layout.tagIndexLink(name, tag, digest), digest.text);
        await storage.putContent(layout.tagCurrentLink(name, tag), digest.text);
      });
    });
    return { digest, size: content.length };
  }

  async function download(client: UpstreamClient, target: MirrorTarget, reference: string): Promise<Downloaded> {
    const res = await askUpstream(client, target, "GET", `manifests/${reference}`, { accept });
    if (res.statusCode === 404) {
      res.resume();
      throw manifestUnknown(reference);
    }
    if (res.statusCode !== 200) {
      res.resume();
      throw upstreamUnavailable(target, describeFailure(res));
    }
    const content = await readSmallBody(res, maxManifestBytes, () =>
      upstreamUnavailable(target, "sent a manifest larger than 4 MiB"),
    );
    const claimed = claimedDigest(res) ?? (reference.includes(":") ? parseDigest(reference) : undefined);
    const digest = digestOf(content, claimed?.algorithm ?? "sha256");
    if (claimed && claimed.text !== digest.text)
      throw wrongContent(target, "a manifest whose digest is not the one it named", claimed.text, digest.text);
    return { digest, content };
  }

  async function byTag(client: UpstreamClient, target: MirrorTarget, tag: string): Promise<CacheFill | undefined> {
    const { name } = target;
    const currentLink = layout.tagCurrentLink(name, tag);
    const cached = await cachedRevision(name, await readLink(storage, currentLink));
    if (cached) {
      const info = await storage.stat(currentLink);
      if (info && now() - info.modified.getTime() < target.tagTtlMs) return;
    }
    const fallBack = (failure: unknown): undefined => {
      const context = { upstream: target.upstream, repository: name, tag, reason: describeFailure(failure) };
      if (!cached) {
        logger.warn(context, `upstream "${target.upstream}" could not be asked for the tag, and it is not cached`);
        throw failure instanceof RegistryError ? failure : upstreamUnavailable(target, describeFailure(failure));
      }
      logger.warn(context, `upstream "${target.upstream}" could not confirm the tag; serving the cached manifest`);
      return undefined;
    };
    let head: IncomingMessage;
    try {
      head = await askUpstream(client, target, "HEAD", `manifests/${tag}`, { accept });
    } catch (error) {
      return fallBack(error);
    }
    head.resume();
    if (head.statusCode === 404) throw manifestUnknown(tag);
    if (head.statusCode !== 200) return fallBack(head);
    const latest = claimedDigest(head);
    if (cached && latest?.text === cached.text) {
      // Rewriting the link restarts the TTL, for every process on this storage.
      await storage.withLock(lockKeys.tag(name, tag), () => storage.putContent(currentLink, cached.text));
      return;
    }
    let downloaded: Downloaded;
    try {
      downloaded = await download(client, target, latest?.text ?? tag);
    } catch (error) {
      if (error instanceof RegistryError && error.code === "MANIFEST_UNKNOWN") throw error;
      return fallBack(error);
    }
    return store(name, downloaded, tag);
  }

  return {
    /**
     * Makes `reference` servable from storage, or throws what the client should be told. Resolves with what
     * was fetched from the upstream and stored, if anything was.
     */
    async fill(client: UpstreamClient, target: MirrorTarget, reference: Reference): Promise<CacheFill | undefined> {
      if ("tag" in reference) return byTag(client, target, reference.tag);
      if (await cachedRevision(target.name, reference.digest)) return undefined;
      try {
        return await store(target.name, await download(client, target, reference.digest.text));
      } catch (error) {
        if (error instanceof RegistryError) throw error;
        throw upstreamUnavailable(target, describeFailure(error));
      }
    },
  };
}

export type ManifestCache = ReturnType<typeof createManifestCache>;

interface Downloaded {
  digest: Digest;
  content: Buffer;
}

function claimedDigest(res: IncomingMessage): Digest | undefined {
  const value = res.headers["docker-content-digest"];
  if (typeof value !== "string") return undefined;
  try {
    return parseDigest(value.trim());
  } catch {
    return undefined;
  }
}
