import { EventEmitter } from "node:events";
import { describe, expect, it, vi } from "vitest";
import { createConnectionBalance } from "../../src/cli/connection-balance.js";

const connection = () => new EventEmitter();

describe("createConnectionBalance", () => {
  it("keeps every connection while no peer is known", () => {
    const balance = createConnectionBalance(() => undefined);
    for (let i = 0; i < 10; i++) {
      expect(balance.handOverTo()).toBeUndefined();
      balance.serving(connection());
    }
  });

  it("hands a burst over to the least busy peer once it holds 4 more, counting what it handed", () => {
    const balance = createConnectionBalance(() => undefined);
    balance.peerReported(1, 0);
    balance.peerReported(2, 3);
    const kept: number[] = [];
    const handed: number[] = [];
    for (let i = 0; i < 20; i++) {
      const to = balance.handOverTo();
      if (to === undefined) {
        balance.serving(connection());
        kept.push(i);
      } else handed.push(to);
    }
    // The first four stay; then each connection goes to whoever holds least, here or at a peer.
    expect(kept.slice(0, 4)).toEqual([0, 1, 2, 3]);
    expect(kept.length).toBeGreaterThanOrEqual(8);
    expect(handed.filter((peer) => peer === 1).length).toBeGreaterThan(handed.filter((peer) => peer === 2).length);
    expect(handed.length + kept.length).toBe(20);
  });

  it("forgets a peer that went away", () => {
    const balance = createConnectionBalance(() => undefined);
    balance.peerReported(1, 0);
    for (let i = 0; i < 4; i++) balance.serving(connection());
    expect(balance.handOverTo()).toBe(1);
    balance.peerGone(1);
    expect(balance.handOverTo()).toBeUndefined();
  });

  it("reports its count of open connections at most every 20 ms, and only when it changed", () => {
    vi.useFakeTimers();
    try {
      const reports: number[] = [];
      const balance = createConnectionBalance((open) => reports.push(open));
      const sockets = [connection(), connection(), connection()];
      for (const socket of sockets) balance.serving(socket);
      vi.advanceTimersByTime(25);
      expect(reports).toEqual([3]);
      sockets[0]?.emit("close");
      balance.serving(connection());
      vi.advanceTimersByTime(25);
      expect(reports).toEqual([3]);
      sockets[1]?.emit("close");
      vi.advanceTimersByTime(25);
      expect(reports).toEqual([3, 2]);
    } finally {
      vi.useRealTimers();
    }
  });
});
