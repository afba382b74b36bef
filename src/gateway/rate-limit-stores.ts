import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import type { Redis as RedisClient } from "ioredis";
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterSQLite,
  type IRateLimiterOptions,
  type RateLimiterAbstract,
} from "rate-limiter-flexible";

/** Counts how many times a key has been locked out; a count is forgotten `memorySeconds` after its last lockout. */
export interface LockoutCounter {
  /** Adds one lockout and returns the count, this one included. */
  increment(key: string): Promise<number>;
  forget(key: string): Promise<void>;
}

/** Where budgets and lockout counts live: shared by every process that opens the same store. */
export interface LimitStore {
  /** For log lines: "Redis", "the state file …", "this process's memory". */
  name: string;
  limiter(options: IRateLimiterOptions): RateLimiterAbstract;
  lockouts: LockoutCounter;
  /** True once the store answers; false if it does not within `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** A Redis that accepts connections but does not answer must not hold requests up. */
const redisCommandTimeoutMs = 1000;

/** This process only: for a server of one process, and as the fallback while a shared store fails. */
export function memoryStore(memorySeconds: number): LimitStore {
  const counts = new Map<string, { count: number; expires: number }>();
  return {
    name: "this process's memory",
    limiter: (options) => new RateLimiterMemory(options),
    lockouts: {
      async increment(key) {
        const now = Date.now();
        for (const [k, entry] of counts) if (entry.expires <= now) counts.delete(k);
        const count = (counts.get(key)?.count ?? 0) + 1;
        counts.set(key, { count, expires: now + memorySeconds * 1000 });
        return count;
      },
      async forget(key) {
        counts.delete(key);
      },
    },
    ready: async () => true,
    close: async () => undefined,
  };
}

/**
 * An SQLite file on the data disk, for the workers of one host: WAL mode lets them read and write it at
 * once, and nothing is synced, since a count lost to a power cut costs nothing.
 */
export function sqliteStore(file: string, memorySeconds: number): LimitStore {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file, { timeout: 1000 });
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = OFF");
  // rate-limiter-flexible's own table, made here at once rather than by its constructor in the background.
  db.exec(
    "CREATE TABLE IF NOT EXISTS limits (key TEXT PRIMARY KEY, points INTEGER NOT NULL DEFAULT 0, expire INTEGER)",
  );
  db.exec(
    "CREATE TABLE IF NOT EXISTS lockouts (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expire INTEGER NOT NULL)",
  );
  const increment = db.prepare<[string, number, number], { count: number }>(
    `INSERT INTO lockouts (key, count, expire) VALUES (?, 1, ?)
     ON CONFLICT(key) DO UPDATE SET count = CASE WHEN expire > ? THEN count + 1 ELSE 1 END, expire = excluded.expire
     RETURNING count`,
  );
  const forget = db.prepare<[string]>("DELETE FROM lockouts WHERE key = ?");
  const expired = db.prepare<[number]>("DELETE FROM lockouts WHERE expire <= ?");
  // What rate-limiter-flexible uses of the database, minus its cost per request: it prepares its statements
  // anew on every call (kept here once prepared), and wraps each one-statement upsert in a transaction (a
  // single statement is atomic on its own).
  const statements = new Map<string, Database.Statement>();
  const client = {
    prepare(sql: string) {
      let statement = statements.get(sql);
      if (!statement) statements.set(sql, (statement = db.prepare(sql)));
      return statement;
    },
    transaction: <T>(task: () => T) => task,
  };
  return {
    name: `the state file ${file}`,
    limiter: (options) =>
      new RateLimiterSQLite({
        ...options,
        storeClient: client,
        storeType: "better-sqlite3",
        tableName: "limits",
        tableCreated: true,
        clearExpiredByTimeout: true,
      }),
    lockouts: {
      async increment(key) {
        const now = Date.now();
        expired.run(now);
        const row = increment.get(key, now + memorySeconds * 1000, now);
        return row?.count ?? 1;
      },
      async forget(key) {
        forget.run(key);
      },
    },
    ready: async () => true,
    async close() {
      db.close();
    },
  };
}

/** Redis, for several machines; `onError` hears every failed (re)connection. */
export function redisStore(url: string, memorySeconds: number, onError: (error: unknown) => void): LimitStore {
  // Loaded only when configured: it weighs some 8 MiB in every server process.
  const { Redis } = createRequire(import.meta.url)("ioredis") as { Redis: typeof RedisClient };
  const client = new Redis(url, {
    // rate-limiter-flexible's advice: fail at once while disconnected instead of queueing requests.
    enableOfflineQueue: false,
    commandTimeout: redisCommandTimeoutMs,
  });
  // ioredis reports every failed (re)connection as an 'error' event; without a listener it prints each one.
  client.on("error", onError);
  return {
    name: "Redis",
    limiter: (options) => new RateLimiterRedis({ ...options, storeClient: client }),
    lockouts: {
      async increment(key) {
        const replies = await client.multi().incr(key).expire(key, memorySeconds).exec();
        const [error, count] = replies?.[0] ?? [new Error("Redis returned no reply to INCR"), undefined];
        if (error) throw error;
        return Number(count);
      },
      async forget(key) {
        await client.del(key);
      },
    },
    async ready(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        try {
          if (client.status === "ready" && (await client.ping()) === "PONG") return true;
        } catch {
          // Connecting, or a reply lost to a reconnect: ask again.
        }
        await sleep(50);
      }
      return false;
    },
    async close() {
      client.off("error", onError);
      client.on("error", () => {});
      if (client.status === "ready") await client.quit().catch(() => client.disconnect());
      else client.disconnect();
    },
  };
}
