import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../log.js";
import { createBlobStore } from "../registry/blob-store.js";
import { digestFromHash, newHash, type Digest } from "../registry/digest.js";
import { blobUnknown } from "../registry/errors.js";
import type { StorageDriver } from "../registry/storage/driver.js";
import { StorageUnavailable } from "../registry/storage/errors.js";
import { layout } from "../registry/storage/layout.js";
import type { UpstreamClient } from "../upstream/client.js";
import { askUpstream, describeFailure, upstreamUnavailable, wrongContent, type CacheFill } from "./upstream-answer.js";
import type { MirrorTarget } from "./routes.js";

/** Each wait for the lock ends after 30 s; a fetch that others wait for longer than this many is stuck. */
const maxLockWaits = 20;

export interface BlobCacheDeps {
  storage: StorageDriver;
  logger: Logger;
}

/**
 * Blobs of a mirrored repository: fetched from the upstream once, while the bytes stream to the client
 * that asked first, into a temporary file that becomes the blob only once its digest is verified. The
 * fetch holds a lock on the digest in storage, so the other clients (in any process) asking for it meanwhile
 * wait and are then served from storage.
 */
export function createBlobCache({ storage, logger }: BlobCacheDeps) {
  const blobs = createBlobStore(storage);

  /** The blob's content is stored already (pushed elsewhere): linked once the upstream says it has it here. */
  async function linkIfUpstreamHas(client: UpstreamClient, target: MirrorTarget, digest: Digest): Promise<boolean> {
    if (!(await blobs.exists(digest))) return false;
    const head = await askUpstream(client, target, "HEAD", `blobs/${digest.text}`);
    head.resume();
    if (head.statusCode !== 200) return false;
    await blobs.link(target.name, digest);
    return true;
  }

  async function fetchInto(
    client: UpstreamClient,
    target: MirrorTarget,
    digest: Digest,
    res: ServerResponse,
    stored: (fill: CacheFill) => void,
  ): Promise<void> {
    const upstream = await askUpstream(client, target, "GET", `blobs/${digest.text}`);
    if (upstream.statusCode !== 200) {
      upstream.resume();
      if (upstream.statusCode === 404) throw blobUnknown(digest.text);
      throw upstreamUnavailable(target, describeFailure(upstream));
    }
    const id = `cache-${randomUUID()}`;
    const temp = layout.uploadData(target.name, id);
    const length = upstream.headers["content-length"];
    res.writeHead(200, {
      ...blobHeaders(digest),
      ...(length === undefined ? {} : { "Content-Length": length }),
    });
    const hash = newHash(digest.algorithm);
    let hashedBytes = 0;
    try {
      await storage.putContent(layout.uploadStartedAt(target.name, id), new Date().toISOString(), { durable: false });
      await storage.append(
        temp,
        0,
        teeToClient(upstream, res, (chunk) => {
          hash.update(chunk);
          hashedBytes += chunk.length;
        }),
      );
      const actual = digestFromHash(hash, digest.algorithm);
      if (actual.text !== digest.text) {
        logger.warn(
          { upstream: target.upstream, repository: target.name, expected: digest.text, actual: actual.text },
          `upstream "${target.upstream}" sent a blob that is not the one asked for; it was not stored`,
        );
        throw wrongContent(target, "a blob whose digest is not the one asked for", digest.text, actual.text);
      }
      await blobs.commitAndLink(temp, digest, target.name);
      stored({ digest, size: hashedBytes });
    } finally {
      await storage.delete(layout.uploadDir(target.name, id));
    }
    res.end();
  }

  return {
    /**
     * Makes the blob servable from storage. Resolves "streamed" when it was fetched now and already written
     * to `res` (whose headers are then sent; `stored` is told before its end), "stored" when storage serves it.
     */
    async fill(
      client: UpstreamClient,
      target: MirrorTarget,
      digest: Digest,
      res: ServerResponse,
      stored: (fill: CacheFill) => void = () => undefined,
    ): Promise<"streamed" | "stored"> {
      for (let attempt = 1; ; attempt++) {
        let entered = false;
        try {
          return await storage.withLock(`cache-blob\n${digest.text}`, async () => {
            entered = true;
            if (await blobs.stat(target.name, digest)) return "stored";
            if (await linkIfUpstreamHas(client, target, digest)) return "stored";
            await fetchInto(client, target, digest, res, stored);
            return "streamed";
          });
        } catch (error) {
          // Waiting for the lock timed out (storage reports it as unavailable) while another request still
          // fetches the blob, a large one from a slow upstream: wait again, a while, as long as this client does.
          const lockTimedOut = !entered && error instanceof StorageUnavailable;
          if (!lockTimedOut || res.destroyed || attempt >= maxLockWaits) throw error;
          logger.debug({ digest: digest.text }, "still waiting for another request's fetch of the blob");
        }
      }
    },

    /**
     * A HEAD for a blob: answered from the upstream's HEAD when it is not stored ("answered"), without a
     * download; "stored" when storage serves it.
     */
    async head(
      client: UpstreamClient,
      target: MirrorTarget,
      digest: Digest,
      res: ServerResponse,
    ): Promise<"answered" | "stored"> {
      if (await blobs.stat(target.name, digest)) return "stored";
      const head = await askUpstream(client, target, "HEAD", `blobs/${digest.text}`);
      head.resume();
      if (head.statusCode === 404) throw blobUnknown(digest.text);
      if (head.statusCode !== 200) throw upstreamUnavailable(target, describeFailure(head));
      if (await blobs.exists(digest)) {
        await blobs.link(target.name, digest);
        return "stored";
      }
      const length = head.headers["content-length"];
      res.writeHead(200, {
        ...blobHeaders(digest),
        ...(length === undefined ? {} : { "Content-Length": length }),
      });
      res.end();
      return "answered";
    },
  };
}

function blobHeaders(digest: Digest): Record<string, string> {
  return {
    "Content-Type": "application/octet-stream",
    "Docker-Content-Digest": digest.text,
    ETag: `"${digest.text}"`,
    "Cache-Control": "max-age=31536000",
  };
}

export type BlobCache = ReturnType<typeof createBlobCache>;

/**
 * The upstream's bytes, for the temporary file, also written to the client while it is there. The client
 * sets the pace while connected (so nothing piles up in memory); once it has gone, the fetch goes on alone,
 * for whoever asks next.
 */
async function* teeToClient(
  source: IncomingMessage,
  res: ServerResponse,
  seen: (chunk: Buffer) => void,
): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    const bytes = chunk as Buffer;
    seen(bytes);
    if (!res.destroyed && !res.writableEnded && !res.write(bytes)) await drainedOrGone(res);
    yield bytes;
  }
}

function drainedOrGone(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
