/**
 * Buffers of one size, kept for the next user once given back. A blob read out through a new pair of 1 MiB
 * buffers per request left 2 MiB of garbage outside the heap each time, and V8 answers that much external
 * memory with full collections: a quarter of a pull's CPU, for 256 KiB layers.
 */
export interface BufferPool {
  take(): Buffer;
  /** Only a buffer nothing refers to any more: the next `take` may hand it out. */
  giveBack(buffer: Buffer): void;
}

export function createBufferPool(bytes: number, keep: number): BufferPool {
  const idle: Buffer[] = [];
  return {
    take: () => idle.pop() ?? Buffer.allocUnsafeSlow(bytes),
    giveBack(buffer) {
      if (idle.length < keep && buffer.length === bytes) idle.push(buffer);
    },
  };
}
