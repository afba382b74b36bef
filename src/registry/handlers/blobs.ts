import type { BlobStore } from "../blob-store.js";
import { parseDigest } from "../digest.js";
import { parseRangeHeader, sendEmpty } from "../http.js";
import { checkRepositoryName } from "../names.js";
import type { Handler } from "./types.js";

export function createBlobHandlers(blobs: BlobStore): { get: Handler; delete: Handler } {
  return {
    async get({ req, res }, params) {
      const name = checkRepositoryName(params.name);
      const digest = parseDigest(params.digest);
      const { size } = await blobs.require(name, digest);
      const headers = {
        "Content-Type": "application/octet-stream",
        "Docker-Content-Digest": digest.text,
        ETag: `"${digest.text}"`,
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
      };
      const wanted = parseRangeHeader(req.headers.range, size);
      if (wanted.kind === "unsatisfiable") {
        sendEmpty(res, 416, { ...headers, "Content-Range": `bytes */${size}` });
        return;
      }
      const range = wanted.kind === "range" ? wanted.range : undefined;
      const length = range ? range.end - range.start + 1 : size;
      res.writeHead(range ? 206 : 200, {
        ...headers,
        "Content-Length": length,
        ...(range ? { "Content-Range": `bytes ${range.start}-${range.end}/${size}` } : {}),
      });
      if (req.method === "HEAD" || length === 0) {
        res.end();
        return;
      }
      await blobs.send(digest, res, range);
      res.end();
    },

    async delete({ res, observe }, params) {
      const name = checkRepositoryName(params.name);
      const digest = parseDigest(params.digest);
      await blobs.unlink(name, digest);
      observe?.({ kind: "deleted" });
      sendEmpty(res, 202, { "Docker-Content-Digest": digest.text });
    },
  };
}
