import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthGatewayUnderTest, type AuthGatewayUnderTest } from "../support/auth-gateway-under-test.js";

let gw: AuthGatewayUnderTest;
beforeAll(async () => {
  gw = await startAuthGatewayUnderTest({
    users: { alice: "alice-password", bob: "bob-password" },
    settings: {
      rateLimits: {
        loginFailuresPerAccountAndIp: { points: 5, durationSeconds: 60, blockSeconds: 2 },
        requestsPerAccount: { points: 30, durationSeconds: 60 },
      },
    },
  });
});
afterAll(async () => {
  await gw.stop();
});

describe("brute-force lockout at /token", () => {
  it("answers 429 with Retry-After within 20 wrong passwords, refuses the right one until the block ends, and spares others", async () => {
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 20; i++) {
      const res = await gw.token("alice", `guess-${i}`, []);
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers["retry-after"] as string;
        expect(JSON.parse(res.body.toString()).error).toBe("slow_down");
      }
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);

    expect((await gw.token("alice", "alice-password", [])).status).toBe(429);
    expect((await gw.token("bob", "bob-password", [])).status).toBe(200);
    expect((await gw.token("alice", "alice-password", [], "127.0.0.2")).status).toBe(200);

    await sleep((Number(retryAfter) + 1) * 1000);
    expect((await gw.token("alice", "alice-password", [])).status).toBe(200);
    expect(gw.auditRecords().some((r) => r.action === "rate-limit" && r.actor.name === "alice")).toBe(true);
  });
});

describe("request budgets on /v2/", () => {
  it("answers TOOMANYREQUESTS with Retry-After once an account spends its budget", async () => {
    const token = JSON.parse(
      (await gw.token("bob", "bob-password", ["repository:team/app:pull"])).body.toString(),
    ).token;
    const statuses: number[] = [];
    for (let i = 0; i < 35; i++) {
      const res = await gw.request("/v2/team/app/tags/list", { headers: { Authorization: `Bearer ${token}` } });
      statuses.push(res.status);
      if (res.status === 429) {
        expect(JSON.parse(res.body.toString()).errors[0].code).toBe("TOOMANYREQUESTS");
        expect(Number(res.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      }
    }
    expect(statuses.filter((s) => s === 404)).toHaveLength(30);
    expect(statuses.slice(30).every((s) => s === 429)).toBe(true);
  });
});
