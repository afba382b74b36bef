import type { Config } from "../config/schema.js";
import { createMirrorRoutes } from "./routes.js";

/** Where a repository's content comes from, when it is not (only) pushed: for `ls` and the console. */
export type RepositoryOrigin =
  | { kind: "cache"; upstream: string; url: string }
  /** A group's repository: what was pushed to it, then the mirrored repository `cache`. */
  | { kind: "group"; cache: string; upstream: string; url: string };

/** The origin of each repository as the config's mirrors and groups say; undefined for a pushed-only one. */
export function createOrigins(config: Pick<Config, "mirrors" | "groups" | "upstreams">) {
  const routes = createMirrorRoutes(config.mirrors, config.groups);
  const urlOf = (upstream: string) => config.upstreams[upstream]?.url ?? "";
  return (name: string): RepositoryOrigin | undefined => {
    const found = routes.route(name);
    if (!found) return undefined;
    if (found.kind === "mirror") {
      const { upstream } = found.target;
      return { kind: "cache", upstream, url: urlOf(upstream) };
    }
    const { cache } = found.target;
    return { kind: "group", cache: cache.name, upstream: cache.upstream, url: urlOf(cache.upstream) };
  };
}

/** `cache of upstream hub (https://registry-1.docker.io)`, or the group's form of it. */
export function describeOrigin(origin: RepositoryOrigin): string {
  const upstream = `upstream ${origin.upstream} (${origin.url})`;
  return origin.kind === "cache" ? `cache of ${upstream}` : `group: pushed here, else ${origin.cache} from ${upstream}`;
}
