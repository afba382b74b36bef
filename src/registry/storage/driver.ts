import type { Readable, Writable } from "node:stream";

export interface FileInfo {
  size: number;
  modified: Date;
  isDirectory: boolean;
}

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/**
 * The narrow interface every storage backend implements. Paths are relative to the backend's root and
 * come from `layout.ts` only. Small files (links, manifests) are read whole; blobs are only ever streamed.
 */
export interface StorageDriver {
  /** A small file's whole content, or undefined when it does not exist. */
  getContent(path: string): Promise<Buffer | undefined>;
  /**
   * Replaces a small file so that readers see either the old or the new content, never a mix, durably.
   * `durable: false` is for a file whose loss in a power cut costs nothing (an upload's start time): it is
   * written in place, unsynced, and a reader that does not hold its lock may briefly see it torn.
   */
  putContent(path: string, content: Buffer | string, options?: { durable?: boolean }): Promise<void>;
  /** Streams a file or a byte range of it; undefined when it does not exist. */
  reader(path: string, range?: ByteRange): Promise<Readable | undefined>;
  /**
   * Writes a file or a byte range of it into `sink` (a response), resolving once all of it is written; false
   * when the file does not exist. Unlike `reader`, it leaves no garbage behind per chunk, so a server
   * sending many blobs at once stays small.
   */
  send(path: string, sink: Writable, range?: ByteRange): Promise<boolean>;
  /**
   * Appends a stream to a file whose current size is `offset`, creating it when `offset` is 0, handing each
   * chunk to `observe` as it goes (a running digest). Resolves to the number of bytes written; when the
   * source fails, the file is cut back to `offset`.
   */
  append(
    path: string,
    offset: number,
    source: Readable | AsyncIterable<Buffer>,
    observe?: (chunk: Buffer) => void,
  ): Promise<number>;
  /** Cuts a file back to `size` bytes. */
  truncate(path: string, size: number): Promise<void>;
  stat(path: string): Promise<FileInfo | undefined>;
  /** Names of a directory's entries, sorted; empty when it does not exist. */
  list(path: string): Promise<string[]>;
  /**
   * Makes a finished file durable and moves it into place atomically (replacing what is there), then
   * `putContent` of a small file that refers to it, their waits for the disk overlapped: both are durable
   * when it resolves, and while it runs the small file never appears before the moved one.
   */
  moveAndPut(from: string, to: string, path: string, content: string): Promise<void>;
  /**
   * Removes a file or a whole directory; no error when it does not exist. `small`: a directory of a few
   * small files (what a finished upload leaves), removed at once instead of a thread-pool round trip a file.
   */
  delete(path: string, options?: { small?: boolean }): Promise<void>;
  /**
   * Runs `task` while no other holder of the same key runs, in this process or any other using this storage
   * (the server's workers, admin commands): an upload's chunks, a tag's updates.
   */
  withLock<T>(key: string, task: () => Promise<T>): Promise<T>;
}
