import { RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import type { RateLimitConfig } from "../config/schema.js";
import { silentLogger, type Logger } from "../log.js";
import { memoryStore, redisStore, sqliteStore, type LimitStore, type LockoutCounter } from "./rate-limit-stores.js";

export interface Blocked {
  /** Whole seconds until the caller may try again (≥ 1), for `Retry-After`. */
  retryAfterSeconds: number;
  limit: "login" | "token" | "requests";
  /** For logs and audit records, e.g. "too many failed logins for alice from 10.0.0.1"; never a password. */
  reason: string;
}

export interface RateLimits {
  /** Before checking a password: is this account/address locked out? (consumes nothing) */
  checkLogin(account: string, ip: string): Promise<Blocked | undefined>;
  /** After a wrong password: counts it on all three login limiters; returns the block if one is now in force. */
  loginFailed(account: string, ip: string): Promise<Blocked | undefined>;
  /** After a right password: forgets the account+address failures and lockouts (not the per-address or per-account ones). */
  loginSucceeded(account: string, ip: string): Promise<void>;
  /** One /token request from an address. */
  tokenRequest(ip: string): Promise<Blocked | undefined>;
  /** One /v2/ request by an account; "" for anonymous, which is counted by address instead. */
  request(account: string, ip: string): Promise<Blocked | undefined>;
  /** New limits from a reloaded config; counts kept in a shared store carry over. */
  reconfigure(settings: RateLimitConfig): void;
  /** True once the shared store answers (at once for the memory store); false if it does not within `timeoutMs`. */
  ready(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface RateLimitsOptions {
  /** redis://HOST:PORT[/DB]: share every budget with the other gateway processes using the same Redis. */
  redisUrl?: string;
  /** Without Redis, an SQLite file that every server process on this host shares; this process's memory without either. */
  stateFile?: string;
  /** Prefix of every key in the store, so two deployments can share one Redis. */
  keyPrefix?: string;
  logger?: Logger;
}

/** Longest block a repeated lockout can grow to. */
const MAX_BLOCK_SECONDS = 86_400;
/** A key's lockout count is forgotten this long after its last lockout: the longest block, then a quiet day. */
const LOCKOUT_MEMORY_SECONDS = MAX_BLOCK_SECONDS + 86_400;
/**
 * Where counts live. `shared` is in the shared store and `local` is this process's memory, used only while
 * the shared store fails; with the memory store both are the same.
 */
interface Pair<T> {
  shared: T;
  local: T;
}

interface Window {
  points: number;
  durationSeconds: number;
}

interface Lockout extends Window {
  blockSeconds: number;
}

/** A login limiter: which key it counts, and how it explains a block. */
interface LoginLimiter {
  name: string;
  settings: Lockout;
  limiter: Pair<RateLimiterAbstract>;
  key(account: string, ip: string): string;
  reason(account: string, ip: string): string;
}

const retryAfter = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** The block lasting longest, since that is when the caller may really try again. */
function longest(blocks: readonly (Blocked | undefined)[]): Blocked | undefined {
  return blocks.reduce<Blocked | undefined>(
    (worst, block) => (block && (!worst || block.retryAfterSeconds > worst.retryAfterSeconds) ? block : worst),
    undefined,
  );
}

/** Consumes one point; the time left in the window when over the limit. */
async function consume(limiter: RateLimiterAbstract, key: string): Promise<{ overMs?: number }> {
  try {
    await limiter.consume(key);
    return {};
  } catch (outcome) {
    if (outcome instanceof RateLimiterRes) return { overMs: outcome.msBeforeNext };
    throw outcome;
  }
}

/**
 * Failed-login lockouts (per account and address, per account, per address), token requests per address and
 * /v2/ requests per account, on rate-limiter-flexible.
 *
 * A login limiter locks its key when the failures in one window reach `points`; the lock lasts `blockSeconds`
 * and doubles with each further lockout of the same key (capped at a day). The lockout count sits in the same
 * store as the limits, so every process sharing the store agrees on it: Redis across machines, else an SQLite
 * file across the workers of one host.
 *
 * Shared store down (Redis unreachable, the state file's disk failing): the registry keeps serving. Each
 * process then counts in its own memory (rate-limiter-flexible's "insurance" idea), so brute-force lockouts
 * still hold per process while the shared budget is unavailable; one warning is logged when the store starts
 * failing and one line when it answers again. Nothing is ever refused because the store failed.
 */
export function createRateLimits(settings: RateLimitConfig, options: RateLimitsOptions = {}): RateLimits {
  const logger = options.logger ?? silentLogger;
  const prefix = options.keyPrefix ?? "portcullis";
  let failing = false;
  function storeFailed(error: unknown): void {
    if (failing) return;
    failing = true;
    logger.warn(
      { err: error instanceof Error ? error.message : String(error) },
      `rate limits: ${shared.name} is not answering; each process counts on its own until it does`,
    );
  }
  function storeAnswered(): void {
    if (!failing) return;
    failing = false;
    logger.info(`rate limits: ${shared.name} answers again; budgets are shared again`);
  }
  const local = memoryStore(LOCKOUT_MEMORY_SECONDS);
  const shared: LimitStore = options.redisUrl
    ? redisStore(options.redisUrl, LOCKOUT_MEMORY_SECONDS, storeFailed)
    : options.stateFile
      ? sqliteStore(options.stateFile, LOCKOUT_MEMORY_SECONDS)
      : local;

  /** Runs `operation` on the shared store, falling back to this process's memory when that fails. */
  async function run<T, R>(pair: Pair<T>, operation: (store: T) => Promise<R>): Promise<R> {
    if (pair.shared === pair.local) return operation(pair.local);
    try {
      const result = await operation(pair.shared);
      storeAnswered();
      return result;
    } catch (error) {
      storeFailed(error);
      return operation(pair.local);
    }
  }

  function limiter(name: string, window: Window): Pair<RateLimiterAbstract> {
    const limiterOptions = { keyPrefix: `${prefix}:${name}`, points: window.points, duration: window.durationSeconds };
    const fallback = local.limiter(limiterOptions);
    return { shared: shared === local ? fallback : shared.limiter(limiterOptions), local: fallback };
  }

  const lockouts: Pair<LockoutCounter> = { shared: shared.lockouts, local: local.lockouts };

  // Account names may hold any character; encoding them keeps "a|b" + "c" apart from "a" + "b|c".
  const id = encodeURIComponent;
  /** The limiters for one set of limits; a reload makes new ones (counts in a shared store carry over). */
  function limitersFor(settings: RateLimitConfig) {
    const accountAndIp: LoginLimiter = {
      name: "login-account-ip",
      settings: settings.loginFailuresPerAccountAndIp,
      limiter: limiter("login-account-ip", settings.loginFailuresPerAccountAndIp),
      key: (account, ip) => `${id(account)}|${ip}`,
      reason: (account, ip) => `too many failed logins for ${account} from ${ip}`,
    };
    const loginLimiters: LoginLimiter[] = [
      accountAndIp,
      {
        name: "login-account",
        settings: settings.loginFailuresPerAccount,
        limiter: limiter("login-account", settings.loginFailuresPerAccount),
        key: (account) => id(account),
        reason: (account) => `too many failed logins for ${account}`,
      },
      {
        name: "login-ip",
        settings: settings.loginFailuresPerIp,
        limiter: limiter("login-ip", settings.loginFailuresPerIp),
        key: (_account, ip) => ip,
        reason: (_account, ip) => `too many failed logins from ${ip}`,
      },
    ];
    const tokens = limiter("token-ip", settings.tokenRequestsPerIp);
    const requests = limiter("requests", settings.requestsPerAccount);
    return { accountAndIp, loginLimiters, tokens, requests };
  }
  let limits = limitersFor(settings);

  const lockoutKey = (login: LoginLimiter, key: string) => `${prefix}:lockouts:${login.name}:${key}`;

  /** Locks `key` for blockSeconds × 2^(earlier lockouts), at most a day; returns the seconds. */
  async function lock(login: LoginLimiter, key: string): Promise<number> {
    const count = await run(lockouts, (counter) => counter.increment(lockoutKey(login, key)));
    const seconds = Math.min(login.settings.blockSeconds * 2 ** Math.min(count - 1, 30), MAX_BLOCK_SECONDS);
    await run(login.limiter, (store) => store.block(key, seconds));
    return seconds;
  }

  async function checkOne(login: LoginLimiter, account: string, ip: string): Promise<Blocked | undefined> {
    const state = await run(login.limiter, (store) => store.get(login.key(account, ip)));
    if (!state || state.consumedPoints < login.settings.points) return undefined;
    return { retryAfterSeconds: retryAfter(state.msBeforeNext), limit: "login", reason: login.reason(account, ip) };
  }

  async function failOne(login: LoginLimiter, account: string, ip: string): Promise<Blocked | undefined> {
    const key = login.key(account, ip);
    const state = await run(login.limiter, (store) => store.penalty(key));
    if (state.consumedPoints < login.settings.points) return undefined;
    const reason = login.reason(account, ip);
    // The count is incremented atomically, so exactly one failure (in any process) lands on `points` and locks.
    if (state.consumedPoints === login.settings.points) {
      return { retryAfterSeconds: await lock(login, key), limit: "login", reason };
    }
    return { retryAfterSeconds: retryAfter(state.msBeforeNext), limit: "login", reason };
  }

  async function countOne(
    pair: Pair<RateLimiterAbstract>,
    key: string,
    limit: Blocked["limit"],
    reason: string,
  ): Promise<Blocked | undefined> {
    const { overMs } = await run(pair, (store) => consume(store, key));
    return overMs === undefined ? undefined : { retryAfterSeconds: retryAfter(overMs), limit, reason };
  }

  return {
    async checkLogin(account, ip) {
      return longest(await Promise.all(limits.loginLimiters.map((login) => checkOne(login, account, ip))));
    },

    async loginFailed(account, ip) {
      return longest(await Promise.all(limits.loginLimiters.map((login) => failOne(login, account, ip))));
    },

    async loginSucceeded(account, ip) {
      const { accountAndIp } = limits;
      const key = accountAndIp.key(account, ip);
      await run(accountAndIp.limiter, (store) => store.delete(key));
      await run(lockouts, (counter) => counter.forget(lockoutKey(accountAndIp, key)));
    },

    tokenRequest(ip) {
      return countOne(limits.tokens, ip, "token", `too many token requests from ${ip}`);
    },

    request(account, ip) {
      return account
        ? countOne(limits.requests, `account|${id(account)}`, "requests", `too many requests by ${account}`)
        : countOne(limits.requests, `ip|${ip}`, "requests", `too many anonymous requests from ${ip}`);
    },

    reconfigure(next) {
      limits = limitersFor(next);
    },

    ready: (timeoutMs = 5000) => shared.ready(timeoutMs),
    close: () => shared.close(),
  };
}
