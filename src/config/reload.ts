import { isDeepStrictEqual } from "node:util";
import type { Logger } from "../log.js";
import type { Config } from "./schema.js";
import { watchConfigFile } from "./watch.js";

/** Keys a running server takes without a restart; any other changed key waits for one. */
export const reloadableKeys = ["policies", "auth.groups", "rateLimits", "tls", "gc", "retention"] as const;
export type ReloadableKey = (typeof reloadableKeys)[number];

export interface ReloadPlan {
  /** Changed keys the running server applies now. */
  reload: ReloadableKey[];
  /** Changed keys that only a restart applies. */
  restart: string[];
}

/** What changed between the running config and the new one, split into what reloads and what waits. */
export function planReload(running: Config, next: Config): ReloadPlan {
  const reload = reloadableKeys.filter((key) => !isDeepStrictEqual(valueAt(running, key), valueAt(next, key)));
  const restart: string[] = [];
  for (const key of Object.keys({ ...running, ...next }) as (keyof Config)[]) {
    if (key === "auth") {
      for (const inner of Object.keys({ ...running.auth, ...next.auth }) as (keyof Config["auth"])[])
        if (inner !== "groups" && !isDeepStrictEqual(running.auth[inner], next.auth[inner]))
          restart.push(`auth.${inner}`);
    } else if (!(reloadableKeys as readonly string[]).includes(key) && !isDeepStrictEqual(running[key], next[key])) {
      restart.push(key);
    }
  }
  return { reload, restart };
}

function valueAt(config: Config, key: ReloadableKey): unknown {
  return key === "auth.groups" ? config.auth.groups : config[key];
}

export interface ReloaderOptions {
  /** The config the server runs with now. */
  initial: Config;
  /** Reads the config again, as the server read it at start (file, PORTCULLIS_* variables, flags). */
  load: () => Promise<Config>;
  /** Puts the reloadable part of `next` into effect. */
  apply: (next: Config, plan: ReloadPlan) => void | Promise<void>;
  /** Files whose change triggers a reload: the config file (htpasswd users reload by themselves). */
  files: readonly string[];
  /** Signals that trigger a reload; SIGHUP, as `systemctl reload` sends it. */
  signals?: readonly NodeJS.Signals[];
  logger: Logger;
  intervalMs?: number;
}

/**
 * Reloads on SIGHUP and whenever a watched file changes: a valid new config has its reloadable keys
 * applied, and the log says what was reloaded and what needs a restart; an invalid one is logged and the
 * running config stays. Reloads never overlap. Returns a function that stops watching.
 */
export function startConfigReloader(options: ReloaderOptions): { reload(): Promise<void>; stop(): void } {
  let running = options.initial;
  let queue = Promise.resolve();

  async function reloadOnce(trigger: string): Promise<void> {
    let next: Config;
    try {
      next = await options.load();
    } catch (error) {
      options.logger.error(
        { trigger, reason: (error as Error).message },
        "the changed configuration is not valid; the running one stays",
      );
      return;
    }
    const plan = planReload(running, next);
    if (plan.reload.length === 0 && plan.restart.length === 0) {
      options.logger.info({ trigger }, "configuration read again: nothing changed");
      return;
    }
    try {
      if (plan.reload.length > 0) await options.apply(next, plan);
    } catch (error) {
      options.logger.error({ trigger, err: error }, "the configuration could not be applied; the running one stays");
      return;
    }
    running = next;
    options.logger.info(
      { trigger, reloaded: plan.reload, needsRestart: plan.restart },
      [
        plan.reload.length ? `reloaded ${plan.reload.join(", ")}` : "",
        plan.restart.length ? `restart to apply ${plan.restart.join(", ")}` : "",
      ]
        .filter(Boolean)
        .join("; "),
    );
  }

  const reload = (trigger: string) => (queue = queue.then(() => reloadOnce(trigger)));
  const stops = options.files.map((file) => watchConfigFile(file, () => void reload(file), options.intervalMs));
  const signals = options.signals ?? ["SIGHUP"];
  const onSignal = (signal: NodeJS.Signals) => void reload(signal);
  for (const signal of signals) process.on(signal, onSignal);
  return {
    reload: () => reload("reload()"),
    stop() {
      for (const stop of stops) stop();
      for (const signal of signals) process.off(signal, onSignal);
    },
  };
}
