import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RateLimitConfig } from "../../src/config/schema.js";
import { createRateLimits, type Blocked, type RateLimits } from "../../src/gateway/rate-limits.js";
import { createLogger } from "../../src/log.js";
import { startRedis, type RedisServer } from "../support/redis.js";

// The children import dist/gateway/rate-limits.js: `npm test` runs tsc before vitest; by hand, `npm run build`.
const CHILD = fileURLToPath(new URL("../support/rate-limits-process.mjs", import.meta.url));
const COMPILED = fileURLToPath(new URL("../../dist/gateway/rate-limits.js", import.meta.url));

const roomy = { points: 1000, durationSeconds: 60, blockSeconds: 60 };
const settings: RateLimitConfig = {
  loginFailuresPerAccountAndIp: { points: 3, durationSeconds: 60, blockSeconds: 1 },
  loginFailuresPerAccount: roomy,
  loginFailuresPerIp: roomy,
  tokenRequestsPerIp: { points: 10, durationSeconds: 60 },
  requestsPerAccount: { points: 7, durationSeconds: 60 },
};

/** One gateway-like process with its own rate limits on the shared Redis. */
interface LimitsProcess {
  call(method: keyof RateLimits, ...args: string[]): Promise<Blocked | null>;
  stop(): Promise<void>;
}

async function startLimitsProcess(redisUrl: string, keyPrefix: string): Promise<LimitsProcess> {
  const child = spawn(process.execPath, [CHILD, JSON.stringify({ settings, redisUrl, keyPrefix })], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = once(child, "exit");
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => {
    const line = await lines.next();
    if (line.done) throw new Error("the rate-limits process exited");
    return JSON.parse(line.value) as Record<string, unknown>;
  };
  if ((await next()).ready !== true) throw new Error("the rate-limits process could not reach Redis");
  let id = 0;
  let queue = Promise.resolve<unknown>(undefined);
  return {
    call(method, ...args) {
      const reply = queue.then(async () => {
        child.stdin.write(`${JSON.stringify({ id: ++id, method, args })}\n`);
        const answer = await next();
        if (answer.error) throw new Error(String(answer.error));
        return answer.result as Blocked | null;
      });
      queue = reply.catch(() => undefined);
      return reply;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin.end(`${JSON.stringify({ id: ++id, method: "close", args: [] })}\n`);
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

describe("rate limits shared through Redis", () => {
  let redis: RedisServer;
  let processes: LimitsProcess[] = [];
  const prefix = () => `portcullis-test-${randomBytes(4).toString("hex")}`;
  const twoProcesses = async (): Promise<[LimitsProcess, LimitsProcess]> => {
    const keyPrefix = prefix();
    const pair = await Promise.all([
      startLimitsProcess(redis.url, keyPrefix),
      startLimitsProcess(redis.url, keyPrefix),
    ]);
    processes.push(...pair);
    return pair;
  };

  beforeAll(async () => {
    if (!existsSync(COMPILED)) throw new Error(`${COMPILED} is missing: run npm run build first`);
    redis = await startRedis();
  });
  afterEach(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    processes = [];
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it("gives two processes one token budget: token requests alternating between them stop at the configured total", async () => {
    const [a, b] = await twoProcesses();
    const outcomes: (Blocked | null)[] = [];
    for (let i = 0; i < 15; i++) {
      outcomes.push(await a.call("tokenRequest", "10.0.0.1"));
      outcomes.push(await b.call("tokenRequest", "10.0.0.1"));
    }
    expect(outcomes.slice(0, 10)).toEqual(Array(10).fill(null));
    for (const blocked of outcomes.slice(10)) expect(blocked).toMatchObject({ limit: "token" });
    expect(await a.call("tokenRequest", "10.0.0.2")).toBeNull();
  });

  it("limits /v2/ requests split across two processes at the same total as one", async () => {
    const [a, b] = await twoProcesses();
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).call("request", "alice", "10.0.0.1")),
    );
    expect(outcomes.filter((o) => o === null)).toHaveLength(settings.requestsPerAccount.points);
    expect(await b.call("request", "bob", "10.0.0.1")).toBeNull();
  });

  it("shows a lockout made by one process to the other, and both count lockouts together", async () => {
    const [a, b] = await twoProcesses();
    await a.call("loginFailed", "alice", "10.0.0.1");
    await b.call("loginFailed", "alice", "10.0.0.1");
    expect(await a.call("loginFailed", "alice", "10.0.0.1")).toMatchObject({ limit: "login", retryAfterSeconds: 1 });
    expect(await b.call("checkLogin", "alice", "10.0.0.1")).toEqual({
      limit: "login",
      retryAfterSeconds: 1,
      reason: "too many failed logins for alice from 10.0.0.1",
    });
    await sleep(1100);
    expect(await b.call("checkLogin", "alice", "10.0.0.1")).toBeNull();
    await b.call("loginFailed", "alice", "10.0.0.1");
    await b.call("loginFailed", "alice", "10.0.0.1");
    // B locks the key for the second time overall, so its block is twice the first one.
    expect(await b.call("loginFailed", "alice", "10.0.0.1")).toMatchObject({ retryAfterSeconds: 2 });
    expect(await a.call("checkLogin", "alice", "10.0.0.1")).toMatchObject({ retryAfterSeconds: 2 });
  });

  it("forgets failures in every process after a right password in one", async () => {
    const [a, b] = await twoProcesses();
    await a.call("loginFailed", "alice", "10.0.0.1");
    await a.call("loginFailed", "alice", "10.0.0.1");
    await b.call("loginSucceeded", "alice", "10.0.0.1");
    expect(await a.call("loginFailed", "alice", "10.0.0.1")).toBeNull();
    expect(await b.call("loginFailed", "alice", "10.0.0.1")).toBeNull();
  });
});

describe("rate limits when Redis goes away", () => {
  let redis: RedisServer | undefined;
  let limits: RateLimits | undefined;
  afterEach(async () => {
    await limits?.close();
    await redis?.stop();
  });

  it("keeps answering, counts in the process's own memory and logs one warning", async () => {
    redis = await startRedis();
    const logLines: string[] = [];
    const logger = createLogger({ level: "info", destination: { write: (line: string) => logLines.push(line) } });
    limits = createRateLimits(settings, { redisUrl: redis.url, keyPrefix: `portcullis-test-down`, logger });
    expect(await limits.ready()).toBe(true);
    expect(await limits.tokenRequest("10.0.0.1")).toBeUndefined();
    await redis.stop();

    const started = Date.now();
    const tokens = [];
    for (let i = 0; i < 12; i++) tokens.push(await limits.tokenRequest("10.0.0.1"));
    expect(tokens.slice(0, 10)).toEqual(Array(10).fill(undefined));
    expect(tokens.slice(10)).toEqual(Array(2).fill(expect.objectContaining({ limit: "token" })));
    await limits.loginFailed("alice", "10.0.0.1");
    await limits.loginFailed("alice", "10.0.0.1");
    expect(await limits.loginFailed("alice", "10.0.0.1")).toMatchObject({ limit: "login", retryAfterSeconds: 1 });
    expect(await limits.checkLogin("alice", "10.0.0.1")).toMatchObject({ limit: "login" });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await limits.ready(300)).toBe(false);

    const warnings = logLines.map((line) => JSON.parse(line) as { level: number; msg: string });
    expect(warnings.filter((w) => w.level === 40)).toEqual([
      expect.objectContaining({ msg: expect.stringContaining("Redis is not answering") }),
    ]);
  });
});
