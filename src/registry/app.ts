import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { silentLogger, type Logger } from "../log.js";
import { matchEndpoint, type EndpointId, type RouteParams } from "./api.js";
import { createBlobStore } from "./blob-store.js";
import { createCatalog } from "./catalog.js";
import { RegistryError, toRegistryError } from "./errors.js";
import { createBlobHandlers } from "./handlers/blobs.js";
import { createListingHandlers } from "./handlers/listings.js";
import { createManifestHandlers } from "./handlers/manifests.js";
import type { Handler } from "./handlers/types.js";
import { createUploadHandlers } from "./handlers/uploads.js";
import { splitUrl } from "../http/request-url.js";
import { sendError, type RequestContext } from "./http.js";
import { createManifestStore } from "./manifest-store.js";
import { createReferrers } from "./referrers.js";
import type { StorageDriver } from "./storage/driver.js";
import { createUploadStore } from "./upload-store.js";

export interface RegistryDeps {
  storage: StorageDriver;
  logger?: Logger;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface Registry {
  /** Serves a request already matched against the API table; never rejects (failures are answered). */
  handle(ctx: RequestContext, endpoint: EndpointId, params: RouteParams): Promise<void>;
  /** Every repository, sorted (what the catalog lists before it is cut to what a caller may see). */
  repositories(): Promise<string[]>;
  /** The registry as a plain Node request handler that matches requests itself (`portcullis registry`). */
  listener: RequestHandler;
}

/** The built-in OCI distribution registry. It trusts every caller: who may do what is decided in front of it. */
export function createRegistry({ storage, logger = silentLogger }: RegistryDeps): Registry {
  const blobs = createBlobStore(storage);
  const manifests = createManifestStore(storage, blobs);
  const uploads = createUploadStore(storage, blobs);
  const blob = createBlobHandlers(blobs);
  const upload = createUploadHandlers(uploads, blobs);
  const manifest = createManifestHandlers(manifests);
  const catalog = createCatalog(storage);
  const listing = createListingHandlers(manifests, catalog, createReferrers(manifests));

  const handlers: Record<EndpointId, Handler> = {
    base: listing.base,
    catalog: listing.catalog,
    "blob.get": blob.get,
    "blob.delete": blob.delete,
    "upload.start": upload.start,
    "upload.status": upload.status,
    "upload.chunk": upload.chunk,
    "upload.complete": upload.complete,
    "upload.cancel": upload.cancel,
    "manifest.get": manifest.get,
    "manifest.put": manifest.put,
    "manifest.delete": manifest.delete,
    "tags.list": listing.tags,
    "referrers.list": listing.referrers,
  };

  async function handle(ctx: RequestContext, endpoint: EndpointId, params: RouteParams): Promise<void> {
    ctx.res.setHeader("Docker-Distribution-API-Version", "registry/2.0");
    try {
      await handlers[endpoint](ctx, params as Required<RouteParams>);
    } catch (error) {
      respondWithError(ctx, error, logger);
    }
  }

  return {
    handle,
    repositories: () => catalog.repositories(),
    listener(req, res) {
      const method = req.method ?? "GET";
      const { path, query } = splitUrl(req.url ?? "/");
      const ctx: RequestContext = {
        req,
        res,
        method,
        path,
        query,
        requestId: String(req.headers["x-request-id"] ?? randomUUID()),
      };
      const route = matchEndpoint(method, path);
      if (route.kind === "found") return void handle(ctx, route.endpoint.id, route.params);
      res.setHeader("Docker-Distribution-API-Version", "registry/2.0");
      if (route.kind === "not-found") {
        return sendError(res, new RegistryError("UNSUPPORTED", "no such endpoint", { method, path }, 404));
      }
      res.setHeader("Allow", [...new Set(route.allowed)].join(", "));
      sendError(res, new RegistryError("UNSUPPORTED", `${method} is not supported here`, { method, path }));
    },
  };
}

function respondWithError(ctx: RequestContext, error: unknown, logger: Logger): void {
  const { res } = ctx;
  const log = () => logger.child({ requestId: ctx.requestId, method: ctx.method, path: ctx.path });
  if (res.headersSent || res.destroyed) {
    // The status line is gone; all that is left is to cut the response short so the client sees a failure.
    if (!isClientGone(error)) log().warn({ err: error }, "response failed after headers were sent");
    res.destroy();
    return;
  }
  if (isClientGone(error)) {
    res.destroy();
    return;
  }
  const answer = toRegistryError(error);
  if (answer.status >= 500) log().error({ err: error }, "registry request failed");
  ctx.observe?.({ kind: "refused", status: answer.status });
  sendError(res, answer);
}

function isClientGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code;
  return code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE" || code === "ERR_STREAM_DESTROYED";
}
