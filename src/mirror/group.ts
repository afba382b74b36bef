import type { RegistryBackend, ServeOptions } from "../gateway/backend.js";
import type { V2Request } from "../gateway/v2-request.js";
import { paginate } from "../http/pagination.js";
import { createBlobStore } from "../registry/blob-store.js";
import { parseDigest } from "../registry/digest.js";
import { blobUnknown, nameUnknown, RegistryError, type ErrorCode } from "../registry/errors.js";
import { sendJson } from "../registry/http.js";
import { createManifestStore, parseReference, type Reference } from "../registry/manifest-store.js";
import type { StorageDriver } from "../registry/storage/driver.js";
import type { UpstreamClient } from "../upstream/client.js";
import type { GroupTarget, MirrorTarget } from "./routes.js";
import type { TagsView } from "./tags-view.js";

export interface GroupDeps {
  builtIn: RegistryBackend;
  storage: StorageDriver;
  tags: TagsView;
  upstream: (target: MirrorTarget) => UpstreamClient;
  /** Serves a read of the group's cache, a mirrored repository, as the mirror does. */
  serveCached: (request: V2Request, target: MirrorTarget, options: ServeOptions) => Promise<void>;
}

/**
 * Repositories of a group: everything a client does to one is done to the built-in repository of that
 * name (pushes, deletes, with the usual checks), except a read of what was never pushed there, which falls
 * through to the mirror's cache. A pushed tag shadows the upstream's tag of the same name.
 */
export function createGroupReads({ builtIn, storage, tags, upstream, serveCached }: GroupDeps) {
  const blobs = createBlobStore(storage);
  const manifests = createManifestStore(storage, blobs);

  /** Whether the manifest was pushed to this repository. */
  async function isStored(name: string, reference: Reference): Promise<boolean> {
    return manifests.resolve(name, reference).then(
      () => true,
      (error: unknown) => (isCode(error, "MANIFEST_UNKNOWN") ? false : Promise.reject(error)),
    );
  }

  async function storedTags(name: string): Promise<string[] | undefined> {
    return manifests
      .tags(name)
      .catch((error: unknown) => (isCode(error, "NAME_UNKNOWN") ? undefined : Promise.reject(error)));
  }

  /** The tags pushed here, and the upstream's (the cached ones when it cannot be asked), as one list. */
  async function listTags(group: GroupTarget, request: V2Request): Promise<void> {
    const pushed = await storedTags(group.name);
    const upstreamTags = (await tags.all(upstream(group.cache), group.cache)) ?? (await storedTags(group.cache.name));
    if (pushed === undefined && (upstreamTags === undefined || upstreamTags.length === 0))
      throw nameUnknown(group.name);
    const union = [...new Set([...(pushed ?? []), ...(upstreamTags ?? [])])].sort();
    const { page, headers } = paginate(
      union,
      request.query,
      request.path,
      (n) => new RegistryError("PAGINATION_NUMBER_INVALID", "invalid number of results requested", { n }),
    );
    sendJson(request.res, 200, { name: group.name, tags: page }, headers);
  }

  /** The request as one for the cache's repository: `all/library/alpine` read as `hub/library/alpine`. */
  function asCached(request: V2Request, group: GroupTarget): V2Request {
    const { route } = request;
    return {
      ...request,
      path: request.path.replace(`/v2/${group.name}/`, `/v2/${group.cache.name}/`),
      route: { ...route, params: { ...route.params, name: group.cache.name } },
    };
  }

  return {
    async serve(request: V2Request, group: GroupTarget, options: ServeOptions): Promise<void> {
      const { route } = request;
      const id = route.endpoint.id;
      if (id === "manifest.get") {
        if (await isStored(group.name, parseReference(route.params.reference ?? "")))
          return builtIn.serve(request, options);
        return serveCached(asCached(request, group), group.cache, options);
      }
      if (id === "blob.get") {
        const digest = parseDigest(route.params.digest ?? "");
        if (await blobs.stat(group.name, digest)) return builtIn.serve(request, options);
        if (request.method !== "HEAD") return serveCached(asCached(request, group), group.cache, options);
        // A HEAD is how a pushing client asks whether it must upload: it is told yes only for content stored
        // here, since a manifest pushed here may reference only blobs linked here (the cached ones are linked
        // on the way, like a cross-repository mount). A blob only the upstream has is fetched by a GET.
        if (!(await blobs.stat(group.cache.name, digest))) throw blobUnknown(digest.text);
        await blobs.link(group.name, digest);
        return builtIn.serve(request, options);
      }
      if (id === "tags.list") return listTags(group, request);
      builtIn.serve(request, options);
    },
  };
}

function isCode(error: unknown, code: ErrorCode): boolean {
  return error instanceof RegistryError && error.code === code;
}

export type GroupReads = ReturnType<typeof createGroupReads>;
