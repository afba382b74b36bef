import { RegistryError } from "../errors.js";
import { locationOf, readSmallBody, sendEmpty } from "../http.js";
import { maxManifestBytes } from "../manifest.js";
import { parseLookupReference, parseReference, type ManifestStore } from "../manifest-store.js";
import { checkRepositoryName } from "../names.js";
import type { Handler } from "./types.js";

const tooLarge = () =>
  new RegistryError("MANIFEST_INVALID", "manifest is larger than the 4 MiB limit", { limit: maxManifestBytes }, 413);

export function createManifestHandlers(manifests: ManifestStore): Record<"get" | "put" | "delete", Handler> {
  return {
    async get({ req, res, observe }, params) {
      const name = checkRepositoryName(params.name);
      const manifest = await manifests.get(name, parseLookupReference(params.reference));
      const { digest, mediaType } = manifest;
      observe?.({ kind: "manifest-served", digest, mediaType, size: manifest.content.length });
      res.writeHead(200, {
        "Content-Type": manifest.mediaType,
        "Content-Length": manifest.content.length,
        "Docker-Content-Digest": manifest.digest.text,
        ETag: `"${manifest.digest.text}"`,
      });
      res.end(req.method === "HEAD" ? undefined : manifest.content);
    },

    async put(ctx, params) {
      const { req, res, observe } = ctx;
      const name = checkRepositoryName(params.name);
      const reference = parseReference(params.reference);
      const content = await readSmallBody(req, maxManifestBytes, tooLarge);
      const { digest, manifest } = await manifests.put(
        name,
        reference,
        content,
        req.headers["content-type"],
        (stored) =>
          observe?.({
            kind: "manifest-stored",
            digest: stored.digest,
            mediaType: stored.manifest.mediaType,
            size: stored.manifest.totalSize,
          }),
      );
      sendEmpty(res, 201, {
        Location: locationOf(ctx, `/v2/${name}/manifests/${digest.text}`),
        "Docker-Content-Digest": digest.text,
        ...(manifest.subject ? { "OCI-Subject": manifest.subject.digest } : {}),
      });
    },

    async delete({ res, observe }, params) {
      const name = checkRepositoryName(params.name);
      await manifests.delete(name, parseLookupReference(params.reference));
      observe?.({ kind: "deleted" });
      sendEmpty(res, 202);
    },
  };
}
