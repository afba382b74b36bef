import type { Catalog } from "../catalog.js";
import { parseDigest } from "../digest.js";
import { paginate } from "../../http/pagination.js";
import { RegistryError } from "../errors.js";
import { sendJson } from "../http.js";
import type { ManifestStore } from "../manifest-store.js";
import { mediaTypes } from "../media-types.js";
import { checkRepositoryName } from "../names.js";
import type { Referrers } from "../referrers.js";
import type { Handler } from "./types.js";

export function createListingHandlers(
  manifests: ManifestStore,
  catalog: Catalog,
  referrers: Referrers,
): Record<"base" | "catalog" | "tags" | "referrers", Handler> {
  return {
    async base({ res }) {
      sendJson(res, 200, {});
    },

    async catalog({ res, path, query, mayList }) {
      const all = await catalog.repositories();
      const { page, headers } = paginate(mayList ? all.filter(mayList) : all, query, path, invalidPageSize);
      sendJson(res, 200, { repositories: page }, headers);
    },

    async tags({ res, path, query }, params) {
      const name = checkRepositoryName(params.name);
      const { page, headers } = paginate(await manifests.tags(name), query, path, invalidPageSize);
      sendJson(res, 200, { name, tags: page }, headers);
    },

    async referrers({ res, query }, params) {
      const name = checkRepositoryName(params.name);
      const subject = parseDigest(params.digest);
      const artifactType = query.get("artifactType");
      let found = await referrers.of(name, subject);
      if (artifactType !== null) found = found.filter((descriptor) => descriptor.artifactType === artifactType);
      const index = { schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: found };
      sendJson(res, 200, index, {
        "Content-Type": mediaTypes.ociIndex,
        ...(artifactType !== null ? { "OCI-Filters-Applied": "artifactType" } : {}),
      });
    },
  };
}

const invalidPageSize = (n: string) =>
  new RegistryError("PAGINATION_NUMBER_INVALID", "invalid number of results requested", { n });
