import { resolve } from "node:path";
import { createLogger } from "../log.js";
import { parseListen } from "../http/listen-address.js";
import { startRegistryServer } from "../registry/server.js";
import { parseArgs, stringFlag } from "./args.js";
import { UsageError } from "./errors.js";

export const registryUsage = "portcullis registry --listen HOST:PORT|unix:PATH --root DIR";

/** Runs the registry layer alone, with no auth in front: only for loopback or a unix socket. */
export async function runRegistry(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, ["listen", "root", "config", "data", "certs"]);
  const listen = stringFlag(args, "listen");
  const root = stringFlag(args, "root") ?? stringFlag(args, "data");
  if (!listen || !root) throw new UsageError(`usage: ${registryUsage}`);
  const target = (() => {
    try {
      return parseListen(listen);
    } catch (error) {
      throw new UsageError(`--listen: ${(error as Error).message}`);
    }
  })();
  if ("host" in target && !isLoopback(target.host)) {
    throw new UsageError(
      `--listen ${listen}: the registry layer has no authentication, so it listens on loopback (127.0.0.1, ::1) or a unix socket only; put \`portcullis serve\` in front for anything else`,
    );
  }
  const logger = createLogger();
  const server = await startRegistryServer({ root: resolve(root), listen, logger });
  process.stdout.write(`portcullis registry listening on ${server.url} (storage ${resolve(root)})\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
