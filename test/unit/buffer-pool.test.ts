import { describe, expect, it } from "vitest";
import { createBufferPool } from "../../src/fs/buffer-pool.js";

describe("createBufferPool", () => {
  it("hands a given-back buffer out again instead of making a new one", () => {
    const pool = createBufferPool(1024, 2);
    const first = pool.take();
    expect(first.length).toBe(1024);
    pool.giveBack(first);
    expect(pool.take()).toBe(first);
  });

  it("never hands one buffer to two users at once", () => {
    const pool = createBufferPool(1024, 4);
    const held = [pool.take(), pool.take(), pool.take()];
    expect(new Set(held).size).toBe(3);
    held.forEach((buffer) => pool.giveBack(buffer));
    const again = [pool.take(), pool.take(), pool.take()];
    expect(new Set(again).size).toBe(3);
  });

  it("keeps no more than it was told to, and nothing of another size", () => {
    const pool = createBufferPool(1024, 1);
    const [a, b] = [pool.take(), pool.take()];
    pool.giveBack(a);
    pool.giveBack(b);
    pool.giveBack(Buffer.alloc(10));
    expect(pool.take()).toBe(a);
    const next = pool.take();
    expect(next).not.toBe(b);
    expect(next.length).toBe(1024);
  });
});
