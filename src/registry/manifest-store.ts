import { readLink, type BlobStore } from "./blob-store.js";
import { digestOf, looksLikeDigest, parseDigest, type Digest } from "./digest.js";
import { manifestUnknown, nameUnknown, RegistryError } from "./errors.js";
import { lockKeys, withLocks } from "./locks.js";
import { parseManifest, storedMediaType, type ParsedManifest } from "./manifest.js";
import { checkTag, isValidTag } from "./names.js";
import type { StorageDriver } from "./storage/driver.js";
import { layout } from "./storage/layout.js";

export interface StoredManifest {
  digest: Digest;
  content: Buffer;
  mediaType: string;
}

export type Reference = { tag: string } | { digest: Digest };

export function parseReference(reference: string): Reference {
  return looksLikeDigest(reference) ? { digest: parseDigest(reference) } : { tag: checkTag(reference) };
}

/**
 * A reference to look up or delete: a tag no push could have made names no manifest, so it is unknown (404
 * MANIFEST_UNKNOWN, as distribution answers and the OCI conformance tests expect), not a malformed request.
 */
export function parseLookupReference(reference: string): Reference {
  if (!looksLikeDigest(reference) && !isValidTag(reference)) throw manifestUnknown(reference);
  return parseReference(reference);
}

/** Manifests (stored as blobs, reached through `_manifests/revisions`) and the tags that point at them. */
export function createManifestStore(storage: StorageDriver, blobs: BlobStore) {
  async function hasRevision(name: string, digest: Digest): Promise<boolean> {
    const link = await readLink(storage, layout.revisionLink(name, digest));
    return link?.text === digest.text && (await blobs.exists(digest));
  }

  async function resolveTag(name: string, tag: string): Promise<Digest | undefined> {
    return readLink(storage, layout.tagCurrentLink(name, tag));
  }

  async function resolve(name: string, reference: Reference): Promise<Digest> {
    const digest = "tag" in reference ? await resolveTag(name, reference.tag) : reference.digest;
    if (!digest || !(await hasRevision(name, digest))) {
      throw manifestUnknown("tag" in reference ? reference.tag : reference.digest.text);
    }
    return digest;
  }

  async function checkReferences(name: string, manifest: ParsedManifest): Promise<void> {
    for (const digest of uniqueDigests(manifest.blobs)) {
      if (!(await blobs.stat(name, digest))) {
        throw new RegistryError("MANIFEST_BLOB_UNKNOWN", "manifest references a blob unknown to this repository", {
          digest: digest.text,
        });
      }
    }
    for (const digest of uniqueDigests(manifest.manifests)) {
      if (!(await hasRevision(name, digest))) {
        throw new RegistryError("MANIFEST_BLOB_UNKNOWN", "index references a manifest unknown to this repository", {
          digest: digest.text,
        });
      }
    }
  }

  /** One tag's updates take turns, across every process on this storage. */
  const withTag = <T>(name: string, tag: string, task: () => Promise<T>) =>
    storage.withLock(lockKeys.tag(name, tag), task);

  /**
   * gc removes a revision no tag reaches only under the manifest's lock (gc.ts), so a put holds it from its
   * revision link to its tag; an index's put also holds its children's, from the check that they are there.
   */
  const withManifests = <T>(name: string, digests: readonly Digest[], task: () => Promise<T>) =>
    withLocks(
      storage,
      digests.map((digest) => lockKeys.manifest(name, digest)),
      task,
    );

  /**
   * The tags a GET can serve: a tag directory whose current link is missing or names a manifest that is not
   * there (a push killed before the tag's last rename) is not listed; `fsck --repair` removes it.
   */
  async function tags(name: string): Promise<string[]> {
    if (!(await storage.stat(layout.repository(name)))) throw nameUnknown(name);
    const found: string[] = [];
    for (const tag of await storage.list(layout.tagsRoot(name))) {
      const digest = await resolveTag(name, tag);
      if (digest && (await hasRevision(name, digest))) found.push(tag);
    }
    return found;
  }

  return {
    resolve,
    tags,

    async get(name: string, reference: Reference): Promise<StoredManifest> {
      const digest = await resolve(name, reference);
      const content = await blobs.read(digest);
      if (!content) throw manifestUnknown(digest.text);
      return { digest, content, mediaType: storedMediaType(content) };
    },

    /**
     * Stores a manifest and moves its tag. `onStored` runs while the tag is still held, so what it records
     * (the audit log) is in the order the tag moved in, whichever process stored it.
     */
    async put(
      name: string,
      reference: Reference,
      content: Buffer,
      contentType: string | undefined,
      onStored: (stored: { digest: Digest; manifest: ParsedManifest }) => void = () => undefined,
    ): Promise<{ digest: Digest; manifest: ParsedManifest }> {
      const digest = digestOf(content, "digest" in reference ? reference.digest.algorithm : "sha256");
      if ("digest" in reference && reference.digest.text !== digest.text) {
        throw new RegistryError("DIGEST_INVALID", "manifest digest does not match its content", {
          expected: reference.digest.text,
          actual: digest.text,
        });
      }
      const manifest = parseManifest(content, contentType);
      return withManifests(name, [digest, ...manifest.manifests], async () => {
        await checkReferences(name, manifest);
        await blobs.put(digest, content);
        await storage.putContent(layout.revisionLink(name, digest), digest.text);
        const stored = { digest, manifest };
        if (!("tag" in reference)) {
          onStored(stored);
          return stored;
        }
        return withTag(name, reference.tag, async () => {
          await storage.putContent(layout.tagIndexLink(name, reference.tag, digest), digest.text);
          await storage.putContent(layout.tagCurrentLink(name, reference.tag), digest.text);
          onStored(stored);
          return stored;
        });
      });
    },

    /** Deleting by tag removes the tag only; deleting by digest removes the manifest and every tag on it. */
    async delete(name: string, reference: Reference): Promise<void> {
      if ("tag" in reference) {
        const { tag } = reference;
        return withTag(name, tag, async () => {
          if (!(await resolveTag(name, tag))) throw manifestUnknown(tag);
          await storage.delete(layout.tagDir(name, tag));
        });
      }
      const digest = reference.digest;
      // Under the manifest's lock, as a put is: a put tagging it meanwhile comes wholly before or after.
      return withManifests(name, [digest], async () => {
        if (!(await readLink(storage, layout.revisionLink(name, digest)))) throw manifestUnknown(digest.text);
        for (const tag of await storage.list(layout.tagsRoot(name))) {
          await withTag(name, tag, async () => {
            if ((await resolveTag(name, tag))?.text === digest.text) await storage.delete(layout.tagDir(name, tag));
          });
        }
        await storage.delete(layout.revisionDir(name, digest));
      });
    },

    /** Every manifest digest the repository holds. */
    async revisions(name: string): Promise<Digest[]> {
      const found: Digest[] = [];
      for (const algorithm of ["sha256", "sha512"] as const) {
        for (const hex of await storage.list(layout.revisionsRoot(name, algorithm))) {
          const digest = await readLink(storage, `${layout.revisionsRoot(name, algorithm)}/${hex}/link`);
          if (digest) found.push(digest);
        }
      }
      return found;
    },

    async read(digest: Digest): Promise<Buffer | undefined> {
      return blobs.read(digest);
    },
  };
}

export type ManifestStore = ReturnType<typeof createManifestStore>;

const uniqueDigests = (digests: readonly Digest[]) => [...new Map(digests.map((d) => [d.text, d])).values()];
