import type { IncomingMessage } from "node:http";
import type { BlobStore } from "../blob-store.js";
import { parseDigest } from "../digest.js";
import { RegistryError } from "../errors.js";
import { contentLength, hasBody, locationOf, parseContentRange, sendEmpty, type RequestContext } from "../http.js";
import { checkRepositoryName, checkUploadId } from "../names.js";
import type { Chunk, UploadStore } from "../upload-store.js";
import type { Handler } from "./types.js";

type UploadHandlers = Record<"start" | "status" | "chunk" | "complete" | "cancel", Handler>;

export function createUploadHandlers(uploads: UploadStore, blobs: BlobStore): UploadHandlers {
  function progress(ctx: RequestContext, name: string, id: string, size: number) {
    return {
      Location: locationOf(ctx, `/v2/${name}/blobs/uploads/${id}`),
      Range: `0-${Math.max(0, size - 1)}`,
      "Docker-Upload-UUID": id,
    };
  }

  function created(ctx: RequestContext, name: string, digest: string) {
    return { Location: locationOf(ctx, `/v2/${name}/blobs/${digest}`), "Docker-Content-Digest": digest };
  }

  return {
    async start(ctx, params) {
      const { req, res, query, observe } = ctx;
      const name = checkRepositoryName(params.name);
      const mount = query.get("mount");
      if (mount !== null) {
        const digest = parseDigest(mount);
        const from = query.get("from");
        // Without a readable source the spec lets the registry fall back to an ordinary upload session.
        if (from !== null && (await blobs.stat(checkRepositoryName(from), digest))) {
          await blobs.link(name, digest);
          observe?.({ kind: "mounted", digest });
          sendEmpty(res, 201, created(ctx, name, digest.text));
          return;
        }
      }
      const digestText = query.get("digest");
      const digest = digestText === null ? undefined : parseDigest(digestText);
      const id = await uploads.create(name);
      if (digest) {
        try {
          await uploads.complete(name, id, digest, chunkOf(req));
        } catch (error) {
          await uploads.cancel(name, id).catch(() => undefined);
          throw error;
        }
        sendEmpty(res, 201, created(ctx, name, digest.text));
        return;
      }
      sendEmpty(res, 202, progress(ctx, name, id, 0));
    },

    async status(ctx, params) {
      const { res } = ctx;
      const name = checkRepositoryName(params.name);
      const id = checkUploadId(params.id);
      sendEmpty(res, 204, progress(ctx, name, id, await uploads.size(name, id)));
    },

    async chunk(ctx, params) {
      const { req, res } = ctx;
      const name = checkRepositoryName(params.name);
      const id = checkUploadId(params.id);
      const size = await uploads.append(name, id, chunkOf(req));
      sendEmpty(res, 202, progress(ctx, name, id, size));
    },

    async complete(ctx, params) {
      const { req, res, query } = ctx;
      const name = checkRepositoryName(params.name);
      const id = checkUploadId(params.id);
      const digestText = query.get("digest");
      if (digestText === null) throw new RegistryError("DIGEST_INVALID", "the digest query parameter is required");
      const digest = parseDigest(digestText);
      await uploads.complete(name, id, digest, hasBody(req) ? chunkOf(req) : undefined);
      sendEmpty(res, 201, created(ctx, name, digest.text));
    },

    async cancel({ res }, params) {
      const name = checkRepositoryName(params.name);
      await uploads.cancel(name, checkUploadId(params.id));
      sendEmpty(res, 204);
    },
  };
}

function chunkOf(req: IncomingMessage): Chunk {
  return {
    body: req,
    range: parseContentRange(req.headers["content-range"]),
    length: contentLength(req),
  };
}
