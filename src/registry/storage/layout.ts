import type { Digest, DigestAlgorithm } from "../digest.js";

/**
 * registry:2's filesystem layout (distribution `registry/storage/paths.go`), so a root written by either
 * registry is served by the other. Every path is relative to the storage root; names and digests reaching
 * here are already validated, so no path component can escape the root.
 */
const base = "docker/registry/v2";

export const layout = {
  repositoriesRoot: `${base}/repositories`,

  blobData: (d: Digest) => `${base}/blobs/${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}/data`,
  blobDir: (d: Digest) => `${base}/blobs/${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}`,
  blobsRoot: `${base}/blobs`,

  repository: (name: string) => `${base}/repositories/${name}`,
  layerLink: (name: string, d: Digest) => `${base}/repositories/${name}/_layers/${d.algorithm}/${d.hex}/link`,
  layerLinkDir: (name: string, d: Digest) => `${base}/repositories/${name}/_layers/${d.algorithm}/${d.hex}`,

  revisionsRoot: (name: string, algorithm: DigestAlgorithm) =>
    `${base}/repositories/${name}/_manifests/revisions/${algorithm}`,
  revisionLink: (name: string, d: Digest) =>
    `${base}/repositories/${name}/_manifests/revisions/${d.algorithm}/${d.hex}/link`,
  revisionDir: (name: string, d: Digest) => `${base}/repositories/${name}/_manifests/revisions/${d.algorithm}/${d.hex}`,

  tagsRoot: (name: string) => `${base}/repositories/${name}/_manifests/tags`,
  tagDir: (name: string, tag: string) => `${base}/repositories/${name}/_manifests/tags/${tag}`,
  tagCurrentLink: (name: string, tag: string) => `${base}/repositories/${name}/_manifests/tags/${tag}/current/link`,
  tagIndexLink: (name: string, tag: string, d: Digest) =>
    `${base}/repositories/${name}/_manifests/tags/${tag}/index/${d.algorithm}/${d.hex}/link`,

  uploadsRoot: (name: string) => `${base}/repositories/${name}/_uploads`,
  uploadDir: (name: string, id: string) => `${base}/repositories/${name}/_uploads/${id}`,
  uploadData: (name: string, id: string) => `${base}/repositories/${name}/_uploads/${id}/data`,
  uploadStartedAt: (name: string, id: string) => `${base}/repositories/${name}/_uploads/${id}/startedat`,
  /** Ours, beside registry:2's files: `<bytes> sha256:<hex>`, the digest of the data's first `<bytes>`. */
  uploadDigest: (name: string, id: string) => `${base}/repositories/${name}/_uploads/${id}/portcullis-sha256`,

  /** Ours, outside registry:2's tree: a blob the last garbage collection found unreferenced (see gc.ts). */
  gcCandidate: (d: Digest) => `state/gc/candidates/${d.algorithm}/${d.hex}`,
  gcCandidatesRoot: "state/gc/candidates",
} as const;

/** Directories under a repository that hold its data rather than nested repositories. */
export function isRepositoryDataDir(entry: string): boolean {
  return entry.startsWith("_");
}
