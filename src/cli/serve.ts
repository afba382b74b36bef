import { resolve } from "node:path";
import { createLogger } from "../log.js";
import { startRegistryServer } from "../registry/server.js";
import { parseArgs, stringFlag } from "./args.js";

export const serveUsage =
  "portcullis serve [--config FILE] [--listen HOST:PORT] [--data DIR] [--certs DIR] [--upstream URL]";

export async function runServe(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, ["config", "listen", "data", "certs", "upstream"]);
  const data = resolve(stringFlag(args, "data") ?? "data");
  const listen = stringFlag(args, "listen") ?? "127.0.0.1:5000";
  const server = await startRegistryServer({ root: data, listen, logger: createLogger() });
  process.stdout.write(`portcullis serving the registry on ${server.url} (storage ${data})\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
