import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { silentLogger, type Logger } from "../log.js";
import { matchEndpoint, type EndpointId, type RouteParams } from "./api.js";
import { createBlobStore } from "./blob-store.js";
import { createCatalog } from "./catalog.js";
import { RegistryError } from "./errors.js";
import { createBlobHandlers } from "./handlers/blobs.js";
import { createListingHandlers } from "./handlers/listings.js";
import { createManifestHandlers } from "./handlers/manifests.js";
import type { Handler } from "./handlers/types.js";
import { createUploadHandlers } from "./handlers/uploads.js";
import { splitUrl } from "../http/request-url.js";
import { sendError } from "./http.js";
import { createManifestStore } from "./manifest-store.js";
import { createReferrers } from "./referrers.js";
import type { StorageDriver } from "./storage/driver.js";
import { createUploadStore } from "./upload-store.js";

export interface RegistryDeps {
  storage: StorageDriver;
  logger?: Logger;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The built-in OCI distribution registry as a plain Node request handler. It trusts every caller. */
export function createRegistryHandler({ storage, logger = silentLogger }: RegistryDeps): RequestHandler {
  const blobs = createBlobStore(storage);
  const manifests = createManifestStore(storage, blobs);
  const uploads = createUploadStore(storage, blobs);
  const blob = createBlobHandlers(blobs);
  const upload = createUploadHandlers(uploads, blobs);
  const manifest = createManifestHandlers(manifests);
  const listing = createListingHandlers(manifests, createCatalog(storage), createReferrers(manifests));

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

  return (req, res) => {
    res.setHeader("Docker-Distribution-API-Version", "registry/2.0");
    const method = req.method ?? "GET";
    const { path, query } = splitUrl(req.url ?? "/");
    const route = matchEndpoint(method, path);
    const requestId = String(req.headers["x-request-id"] ?? randomUUID());
    const run = async () => {
      if (route.kind === "not-found") {
        throw new RegistryError("UNSUPPORTED", "no such endpoint", { method, path }, 404);
      }
      if (route.kind === "wrong-method") {
        res.setHeader("Allow", [...new Set(route.allowed)].join(", "));
        throw new RegistryError("UNSUPPORTED", `${method} is not supported here`, { method, path });
      }
      await handlers[route.endpoint.id]({ req, res, method, path, query }, route.params as Required<RouteParams>);
    };
    run().catch((error: unknown) => respondWithError(res, error, logger.child({ requestId, method, path })));
  };
}

function respondWithError(res: ServerResponse, error: unknown, logger: Logger): void {
  if (res.headersSent) {
    // The status line is gone; all that is left is to cut the response short so the client sees a failure.
    logger.warn({ err: error }, "response failed after headers were sent");
    res.destroy();
    return;
  }
  if (error instanceof RegistryError) {
    sendError(res, error);
    return;
  }
  if (isClientGone(error)) {
    res.destroy();
    return;
  }
  logger.error({ err: error }, "registry request failed");
  sendError(res, new RegistryError("UNKNOWN", "internal error"));
}

function isClientGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code;
  return code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE" || code === "ERR_STREAM_DESTROYED";
}
