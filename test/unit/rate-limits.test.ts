import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import type { RateLimitConfig } from "../../src/config/schema.js";
import { createRateLimits, type Blocked, type RateLimits } from "../../src/gateway/rate-limits.js";

const roomy = { points: 1000, durationSeconds: 60, blockSeconds: 60 };

function settings(overrides: Partial<RateLimitConfig> = {}): RateLimitConfig {
  return {
    loginFailuresPerAccountAndIp: { points: 5, durationSeconds: 60, blockSeconds: 1 },
    loginFailuresPerAccount: roomy,
    loginFailuresPerIp: roomy,
    tokenRequestsPerIp: { points: 1000, durationSeconds: 60 },
    requestsPerAccount: { points: 1000, durationSeconds: 60 },
    ...overrides,
  };
}

let open: RateLimits[] = [];
function limits(config: RateLimitConfig): RateLimits {
  const created = createRateLimits(config);
  open.push(created);
  return created;
}
afterEach(async () => {
  await Promise.all(open.map((l) => l.close()));
  open = [];
});

async function failTimes(l: RateLimits, times: number, account: string, ip: string): Promise<(Blocked | undefined)[]> {
  const outcomes: (Blocked | undefined)[] = [];
  for (let i = 0; i < times; i++) outcomes.push(await l.loginFailed(account, ip));
  return outcomes;
}

describe("failed-login lockout (memory store)", () => {
  it("locks an account out from an address once the wrong passwords reach the configured points", async () => {
    const l = limits(settings({ loginFailuresPerAccountAndIp: { points: 5, durationSeconds: 60, blockSeconds: 30 } }));
    const outcomes = await failTimes(l, 20, "alice", "10.0.0.1");
    expect(outcomes.slice(0, 4)).toEqual([undefined, undefined, undefined, undefined]);
    expect(outcomes[4]).toEqual({
      limit: "login",
      retryAfterSeconds: 30,
      reason: "too many failed logins for alice from 10.0.0.1",
    });
    for (const blocked of outcomes.slice(5)) {
      expect(blocked?.limit).toBe("login");
      expect(blocked?.retryAfterSeconds).toBeGreaterThan(0);
      expect(Number.isInteger(blocked?.retryAfterSeconds)).toBe(true);
    }
  });

  it("reports the lockout before any password is checked, so the right password is refused too", async () => {
    const l = limits(settings({ loginFailuresPerAccountAndIp: { points: 5, durationSeconds: 60, blockSeconds: 30 } }));
    expect(await l.checkLogin("alice", "10.0.0.1")).toBeUndefined();
    await failTimes(l, 5, "alice", "10.0.0.1");
    const blocked = await l.checkLogin("alice", "10.0.0.1");
    expect(blocked?.limit).toBe("login");
    expect(blocked?.retryAfterSeconds).toBeGreaterThanOrEqual(29);
    expect(blocked?.retryAfterSeconds).toBeLessThanOrEqual(30);
    expect(await l.checkLogin("alice", "10.0.0.1")).toEqual(blocked);
  });

  it("leaves another account from the same address and the same account from another address alone", async () => {
    const l = limits(settings());
    await failTimes(l, 20, "alice", "10.0.0.1");
    expect(await l.checkLogin("alice", "10.0.0.1")).toBeDefined();
    expect(await l.checkLogin("bob", "10.0.0.1")).toBeUndefined();
    expect(await l.checkLogin("alice", "10.0.0.2")).toBeUndefined();
    expect(await l.loginFailed("bob", "10.0.0.1")).toBeUndefined();
  });

  it("lets the account in again once the block has expired", async () => {
    const l = limits(settings());
    await failTimes(l, 5, "alice", "10.0.0.1");
    expect((await l.checkLogin("alice", "10.0.0.1"))?.retryAfterSeconds).toBe(1);
    await sleep(1100);
    expect(await l.checkLogin("alice", "10.0.0.1")).toBeUndefined();
    expect(await l.loginFailed("alice", "10.0.0.1")).toBeUndefined();
  });

  it("doubles the block each time the same account and address is locked out again", async () => {
    const l = limits(settings());
    const first = await failTimes(l, 5, "alice", "10.0.0.1");
    expect(first[4]?.retryAfterSeconds).toBe(1);
    await sleep(1100);
    const second = await failTimes(l, 5, "alice", "10.0.0.1");
    expect(second.slice(0, 4)).toEqual([undefined, undefined, undefined, undefined]);
    expect(second[4]?.retryAfterSeconds).toBe(2);
    expect((await l.checkLogin("alice", "10.0.0.1"))?.retryAfterSeconds).toBe(2);
    expect((await failTimes(l, 1, "alice", "10.0.0.9"))[0]).toBeUndefined();
  });

  it("locks once, not once per failure, when wrong passwords arrive at the same moment", async () => {
    const l = limits(settings({ loginFailuresPerAccountAndIp: { points: 3, durationSeconds: 60, blockSeconds: 1 } }));
    const outcomes = await Promise.all(Array.from({ length: 12 }, () => l.loginFailed("alice", "10.0.0.1")));
    expect(outcomes.filter((o) => o === undefined)).toHaveLength(2);
    expect((await l.checkLogin("alice", "10.0.0.1"))?.retryAfterSeconds).toBe(1);
    await sleep(1100);
    expect((await failTimes(l, 3, "alice", "10.0.0.1"))[2]?.retryAfterSeconds).toBe(2);
  });

  it("forgets the failures of an account and address after a right password", async () => {
    const l = limits(settings());
    await failTimes(l, 4, "alice", "10.0.0.1");
    await l.loginSucceeded("alice", "10.0.0.1");
    expect(await failTimes(l, 4, "alice", "10.0.0.1")).toEqual([undefined, undefined, undefined, undefined]);
    expect((await l.loginFailed("alice", "10.0.0.1"))?.retryAfterSeconds).toBe(1);
  });

  it("locks an account guessed at from many addresses, and only that account", async () => {
    const l = limits(settings({ loginFailuresPerAccount: { points: 6, durationSeconds: 60, blockSeconds: 20 } }));
    const outcomes = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => l.loginFailed("alice", `10.0.1.${n}`)));
    expect(outcomes.filter(Boolean)).toEqual([
      { limit: "login", retryAfterSeconds: 20, reason: "too many failed logins for alice" },
    ]);
    expect((await l.checkLogin("alice", "10.0.9.9"))?.reason).toBe("too many failed logins for alice");
    expect(await l.checkLogin("bob", "10.0.1.1")).toBeUndefined();
  });

  it("locks an address that guesses at many accounts, whatever account it tries next", async () => {
    const l = limits(settings({ loginFailuresPerIp: { points: 6, durationSeconds: 60, blockSeconds: 20 } }));
    for (const account of ["a", "b", "c", "d", "e", "f"]) await l.loginFailed(account, "10.0.0.1");
    expect(await l.checkLogin("zed", "10.0.0.1")).toEqual({
      limit: "login",
      retryAfterSeconds: 20,
      reason: "too many failed logins from 10.0.0.1",
    });
    expect(await l.checkLogin("zed", "10.0.0.2")).toBeUndefined();
  });

  it("keeps account names apart even when they contain the key separator", async () => {
    const l = limits(settings());
    await failTimes(l, 5, "a|10.0.0.1", "10.0.0.2");
    expect(await l.checkLogin("a", "10.0.0.1|10.0.0.2")).toBeUndefined();
  });
});

describe("token and request budgets (memory store)", () => {
  it("allows the configured token requests per address in a window, then asks the caller to wait", async () => {
    const l = limits(settings({ tokenRequestsPerIp: { points: 3, durationSeconds: 30 } }));
    const outcomes = await Promise.all([1, 2, 3, 4, 5].map(() => l.tokenRequest("10.0.0.1")));
    expect(outcomes.filter((o) => o === undefined)).toHaveLength(3);
    const blocked = outcomes.find(Boolean);
    expect(blocked).toMatchObject({ limit: "token", reason: "too many token requests from 10.0.0.1" });
    expect(blocked?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(blocked?.retryAfterSeconds).toBeLessThanOrEqual(30);
    expect(await l.tokenRequest("10.0.0.2")).toBeUndefined();
  });

  it("opens the token budget again when its window ends", async () => {
    const l = limits(settings({ tokenRequestsPerIp: { points: 2, durationSeconds: 1 } }));
    await l.tokenRequest("10.0.0.1");
    await l.tokenRequest("10.0.0.1");
    expect((await l.tokenRequest("10.0.0.1"))?.retryAfterSeconds).toBe(1);
    await sleep(1100);
    expect(await l.tokenRequest("10.0.0.1")).toBeUndefined();
  });

  it("counts /v2/ requests per account wherever they come from", async () => {
    const l = limits(settings({ requestsPerAccount: { points: 4, durationSeconds: 60 } }));
    const outcomes = await Promise.all([1, 2, 3, 4, 5].map((n) => l.request("alice", `10.0.0.${n}`)));
    expect(outcomes.filter(Boolean)).toEqual([
      expect.objectContaining({ limit: "requests", reason: "too many requests by alice" }),
    ]);
    expect(await l.request("bob", "10.0.0.1")).toBeUndefined();
  });

  it("counts anonymous /v2/ requests per address", async () => {
    const l = limits(settings({ requestsPerAccount: { points: 2, durationSeconds: 60 } }));
    await l.request("", "10.0.0.1");
    await l.request("", "10.0.0.1");
    expect(await l.request("", "10.0.0.1")).toMatchObject({
      limit: "requests",
      reason: "too many anonymous requests from 10.0.0.1",
    });
    expect(await l.request("", "10.0.0.2")).toBeUndefined();
    expect(await l.request("alice", "10.0.0.1")).toBeUndefined();
  });

  it("is ready at once with the memory store", async () => {
    expect(await limits(settings()).ready()).toBe(true);
  });
});
