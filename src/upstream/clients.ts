import { upstreamEntrySchema, type Config } from "../config/schema.js";
import type { Logger } from "../log.js";
import { createUpstreamClient, type UpstreamClient, type UpstreamConfig } from "./client.js";

/** The name the top-level `upstream: URL` gets when it names no entry of `upstreams`. */
export const unnamedUpstream = "upstream";

/** Every configured upstream's client, by name. */
export interface UpstreamClients {
  get(name: string): UpstreamClient | undefined;
  all(): readonly UpstreamClient[];
  close(): void;
}

/** Each entry of `upstreams` with its name, in the order the file has them. */
export function upstreamConfigs(config: Pick<Config, "upstreams">): UpstreamConfig[] {
  return Object.entries(config.upstreams).map(([name, entry]) => ({ ...entry, name }));
}

/**
 * The upstream the proxy mode fronts: `upstream: NAME` is that entry of `upstreams` (credentials, CA,
 * timeouts); `upstream: URL` an upstream without credentials, trusting the system's CAs, with the default timeouts.
 */
export function proxiedUpstreamConfig(config: Pick<Config, "upstream" | "upstreams">): UpstreamConfig | undefined {
  if (config.upstream === undefined) return undefined;
  const entry = config.upstreams[config.upstream];
  if (entry) return { ...entry, name: config.upstream };
  return { ...upstreamEntrySchema.parse({ url: config.upstream }), name: unnamedUpstream };
}

/** A client for every entry of `upstreams`. */
export function createUpstreamClients(config: Pick<Config, "upstreams">, deps: { logger: Logger }): UpstreamClients {
  const clients = new Map(upstreamConfigs(config).map((entry) => [entry.name, createUpstreamClient(entry, deps)]));
  return {
    get: (name) => clients.get(name),
    all: () => [...clients.values()],
    close() {
      for (const client of clients.values()) client.close();
    },
  };
}
