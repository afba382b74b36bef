import type { RegistryBackend, ServeOptions } from "../gateway/backend.js";
import type { V2Request } from "../gateway/v2-request.js";
import type { Logger } from "../log.js";
import type { EndpointId } from "../registry/api.js";
import { createCatalog } from "../registry/catalog.js";
import { parseDigest } from "../registry/digest.js";
import { RegistryError, toRegistryError } from "../registry/errors.js";
import { sendError } from "../registry/http.js";
import { parseReference } from "../registry/manifest-store.js";
import { checkRepositoryName } from "../registry/names.js";
import type { StorageDriver } from "../registry/storage/driver.js";
import type { UpstreamClient } from "../upstream/client.js";
import { UpstreamError } from "../upstream/errors.js";
import { createBlobCache } from "./blob-cache.js";
import { createGroupReads } from "./group.js";
import { createManifestCache } from "./manifest-cache.js";
import type { MirrorRoutes, MirrorTarget } from "./routes.js";
import { createTagsView } from "./tags-view.js";
import type { CacheFill } from "./upstream-answer.js";

export interface MirrorBackendDeps {
  /** The built-in registry over `storage`: what is not mirrored, and every answer from the cache. */
  builtIn: RegistryBackend;
  storage: StorageDriver;
  routes: MirrorRoutes;
  upstream: (name: string) => UpstreamClient | undefined;
  logger: Logger;
  now?: () => number;
}

/** Endpoints that would change a repository, which a mirror's never does except by fetching. */
const writes = new Set<EndpointId>([
  "upload.start",
  "upload.status",
  "upload.chunk",
  "upload.complete",
  "upload.cancel",
  "manifest.put",
  "manifest.delete",
  "blob.delete",
]);

/**
 * The built-in registry with pull-through caches in front of some of its repositories: a request for a
 * mirrored repository first brings what it asks for from the upstream into storage, then the built-in
 * registry answers it from there (so cached repositories are ordinary ones: listed, audited, collected).
 * A group's repositories are built-in ones whose reads fall through to a mirror's (see group.ts).
 */
export function createMirrorBackend(deps: MirrorBackendDeps): RegistryBackend & { repositories(): Promise<string[]> } {
  const { builtIn, routes, logger } = deps;
  const manifests = createManifestCache(deps);
  const blobs = createBlobCache(deps);
  const tags = createTagsView(deps);
  const catalog = createCatalog(deps.storage);

  function clientFor(target: MirrorTarget): UpstreamClient {
    const client = deps.upstream(target.upstream);
    if (!client) throw new RegistryError("UNAVAILABLE", `upstream "${target.upstream}" is not configured`);
    return client;
  }

  async function serveMirrored(request: V2Request, target: MirrorTarget, options: ServeOptions): Promise<void> {
    const { route, res } = request;
    const id = route.endpoint.id;
    if (writes.has(id))
      throw new RegistryError("DENIED", `${target.name} is a read-only mirror of upstream ${target.upstream}`, {
        upstream: target.upstream,
      });
    const client = clientFor(target);
    const filled = (fill: CacheFill) =>
      options.observe?.({ kind: "cache-filled", repository: target.name, upstream: target.upstream, ...fill });
    if (id === "manifest.get") {
      const fill = await manifests.fill(client, target, parseReference(route.params.reference ?? ""));
      if (fill) filled(fill);
    } else if (id === "blob.get") {
      const digest = parseDigest(route.params.digest ?? "");
      if (request.method === "HEAD") {
        if ((await blobs.head(client, target, digest, res)) === "answered") return;
      } else if ((await blobs.fill(client, target, digest, res, filled)) === "streamed") return;
    } else if (id === "tags.list") {
      if (await tags.serve(client, target, request)) return;
    }
    builtIn.serve(request, options);
  }

  const groups = createGroupReads({
    builtIn,
    storage: deps.storage,
    tags,
    upstream: clientFor,
    serveCached: serveMirrored,
  });

  return {
    serve(request, options = {}) {
      const name = request.route.params.name;
      const found = name === undefined ? undefined : routes.route(name);
      if (!found) return builtIn.serve(request, options);
      const { req, res } = request;
      const target = found.kind === "mirror" ? found.target : found.target.cache;
      void (async () => {
        try {
          res.setHeader("Docker-Distribution-API-Version", "registry/2.0");
          checkRepositoryName(found.target.name);
          checkRepositoryName(target.name);
          if (found.kind === "mirror") await serveMirrored(request, target, options);
          else await groups.serve(request, found.target, options);
        } catch (error) {
          if (error instanceof UpstreamError)
            logger.warn(
              { upstream: target.upstream, repository: target.name, reason: error.message },
              `upstream "${target.upstream}" could not be asked, and the request is not cached`,
            );
          else if (!(error instanceof RegistryError))
            logger.error({ err: error, requestId: request.requestId }, "mirror request failed");
          if (res.headersSent || res.destroyed) {
            // The status line is gone (a blob streaming from the upstream failed): cut the answer short.
            res.destroy();
            return;
          }
          const answer =
            error instanceof UpstreamError
              ? new RegistryError("UNAVAILABLE", error.message, { upstream: target.upstream })
              : toRegistryError(error);
          if (!req.complete) res.setHeader("Connection", "close");
          options.observe?.({ kind: "refused", status: answer.status });
          sendError(res, answer);
        }
      })();
    },
    repositories: () => catalog.repositories(),
  };
}
