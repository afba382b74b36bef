import { fdatasync, writev } from "node:fs";
import { finished, type Readable } from "node:stream";

/**
 * Chunks are gathered into one write of at least this much (a TLS socket delivers 16 KiB at a time). Half a
 * MiB, with a pause at 2, costs a 512 MiB push less server CPU than 1 and 4 did (1.26–1.44 s, was 1.57–1.71).
 */
const writeBatchBytes = 512 * 1024;
/** The source is paused while this much waits for the write in flight: memory per upload stays bounded. */
const pauseAtBytes = 2 * 1024 * 1024;
/**
 * The disk is asked to take what was written every 8 MiB, while the rest still arrives, so the fsync that
 * makes the finished file durable has only the tail left to write (it took a quarter of a 512 MiB push).
 */
const syncBehindBytes = 8 * 1024 * 1024;

/**
 * Writes everything `source` delivers to the open file `fd` from `position`, handing each chunk to `observe`
 * first (a running digest). Chunks are gathered and written together, one thread-pool round trip per 512
 * KiB instead of one per chunk, and nothing per chunk but a push onto a list: a 512 MiB push is 32,768
 * chunks, and streams piped through each other cost more per chunk than hashing it. Resolves to the bytes written
 * once all of them are; rejects when the source fails or ends early, or a write or sync fails, after the
 * write in flight has finished (so the caller may cut the file back); what the source still delivers then is
 * dropped.
 */
export function streamToFile(
  source: Readable,
  fd: number,
  position: number,
  observe?: (chunk: Buffer) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let queued: Buffer[] = [];
    let queuedBytes = 0;
    let written = 0;
    let syncedAt = 0;
    let writing = false;
    let syncing = false;
    let paused = false;
    let ended = false;
    let failure: Error | undefined;

    const settle = () => {
      if (writing || syncing) return;
      if (failure) reject(failure);
      else if (ended && queuedBytes === 0) resolve(written);
    };

    // The source is left to its owner, drained: destroying a request mid-body resets the connection, and
    // the client would never read the error it is answered with.
    const fail = (error: Error) => {
      failure ??= error;
      if (paused) {
        paused = false;
        source.resume();
      }
      settle();
    };

    const syncBehind = () => {
      if (syncing || ended || written - syncedAt < syncBehindBytes) return;
      const at = written;
      syncing = true;
      // A failed sync fails the write: Linux reports a write-back error once, so the final fsync, on another
      // descriptor, would not see it and the blob would be committed without those pages.
      fdatasync(fd, (error) => {
        syncing = false;
        if (error) return fail(error);
        syncedAt = at;
        settle();
      });
    };

    const writeQueued = () => {
      if (writing || failure) return settle();
      if (queuedBytes === 0 || (!ended && queuedBytes < writeBatchBytes)) return settle();
      const buffers = queued;
      const bytes = queuedBytes;
      queued = [];
      queuedBytes = 0;
      writing = true;
      writeFully(fd, buffers, position + written, (error) => {
        writing = false;
        if (error) return fail(error);
        written += bytes;
        if (paused) {
          paused = false;
          source.resume();
        }
        syncBehind();
        writeQueued();
      });
    };

    source.on("data", (chunk: Buffer) => {
      if (failure) return;
      observe?.(chunk);
      queued.push(chunk);
      queuedBytes += chunk.length;
      if (queuedBytes >= pauseAtBytes && !paused) {
        paused = true;
        source.pause();
      }
      writeQueued();
    });
    finished(source, (error) => {
      if (error) return fail(error);
      ended = true;
      writeQueued();
    });
  });
}

/** `writev` until every byte of `buffers` is at `position` (a regular file may take fewer bytes at a time). */
function writeFully(fd: number, buffers: Buffer[], position: number, done: (error: Error | null) => void): void {
  writev(fd, buffers, position, (error, bytesWritten) => {
    if (error) return done(error);
    let rest = buffers;
    let skip = bytesWritten;
    while (rest.length > 0 && skip >= (rest[0] as Buffer).length) {
      skip -= (rest[0] as Buffer).length;
      rest = rest.slice(1);
    }
    if (rest.length === 0) return done(null);
    rest = [(rest[0] as Buffer).subarray(skip), ...rest.slice(1)];
    writeFully(fd, rest, position + bytesWritten, done);
  });
}
