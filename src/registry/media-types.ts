export const mediaTypes = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerForeignLayer: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const;

/** Manifests that list child manifests; the others list a config and layers. */
const indexTypes = new Set<string>([mediaTypes.dockerManifestList, mediaTypes.ociIndex]);
const imageTypes = new Set<string>([mediaTypes.dockerManifest, mediaTypes.ociManifest]);

export function isIndexType(mediaType: string): boolean {
  return indexTypes.has(mediaType);
}

export function isManifestType(mediaType: string): boolean {
  return indexTypes.has(mediaType) || imageTypes.has(mediaType);
}
