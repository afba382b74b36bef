import { resolve } from "node:path";
import { startConfigReloader, type ReloaderOptions } from "../config/reload.js";
import type { Config } from "../config/schema.js";
import type { Logger } from "../log.js";
import { stringFlag, type ParsedArgs } from "./args.js";
import { configFromArgs } from "./config-args.js";

/**
 * The reloader `serve` runs in each server process: the config is read again as serve read it (the file,
 * PORTCULLIS_* variables, the same flags) on SIGHUP and whenever the config file changes.
 */
export function startServeReloader(
  args: ParsedArgs,
  initial: Config,
  apply: ReloaderOptions["apply"],
  logger: Logger,
): ReturnType<typeof startConfigReloader> {
  return startConfigReloader({
    initial,
    load: () => configFromArgs(args),
    apply,
    files: [resolve(stringFlag(args, "config") ?? "portcullis.yaml")],
    logger,
  });
}
