import { resolve } from "node:path";
import { createLogger } from "../log.js";
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
  const logger = createLogger();
  let server;
  try {
    server = await startRegistryServer({ root: resolve(root), listen, logger });
  } catch (error) {
    if (error instanceof Error && error.message.startsWith("--listen")) throw new UsageError(error.message);
    throw error;
  }
  process.stdout.write(`portcullis registry listening on ${server.url} (storage ${resolve(root)})\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
