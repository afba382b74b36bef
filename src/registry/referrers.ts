import type { Digest } from "./digest.js";
import { parseManifest, type Descriptor } from "./manifest.js";
import type { ManifestStore } from "./manifest-store.js";

/**
 * The referrers of a manifest: the manifests in the same repository whose `subject` is it (spec.md,
 * "Listing Referrers"). registry:2's layout keeps no index of subjects, so the repository's manifests are
 * read; that keeps a root written by another registry correct without a migration.
 */
export function createReferrers(manifests: ManifestStore) {
  return {
    async of(name: string, subject: Digest): Promise<Descriptor[]> {
      const found: Descriptor[] = [];
      for (const digest of await manifests.revisions(name)) {
        const content = await manifests.read(digest);
        if (!content) continue;
        let manifest;
        try {
          manifest = parseManifest(content, undefined);
        } catch {
          continue;
        }
        if (manifest.subject?.digest !== subject.text) continue;
        const artifactType = manifest.artifactType ?? manifest.configMediaType;
        found.push({
          mediaType: manifest.mediaType,
          digest: digest.text,
          size: content.length,
          ...(artifactType ? { artifactType } : {}),
          ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
        });
      }
      return found.sort((a, b) => (a.digest < b.digest ? -1 : 1));
    },
  };
}

export type Referrers = ReturnType<typeof createReferrers>;
