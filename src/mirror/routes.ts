import type { GroupConfig, MirrorConfig } from "../config/schema.js";

/** A repository served from an upstream: its name here and there, and how long its tags are believed. */
export interface MirrorTarget {
  /** The repository as clients name it, and as storage holds it: `hub/library/alpine`. */
  name: string;
  /** The same repository on the upstream: `library/alpine`. */
  remoteName: string;
  /** The entry of `upstreams` it comes from. */
  upstream: string;
  tagTtlMs: number;
}

/** A repository of a group: stored as `name` when pushed, and read from `cache` for what was not. */
export interface GroupTarget {
  /** The repository as clients name it, and as storage holds what was pushed to it: `all/library/alpine`. */
  name: string;
  /** The mirrored repository a pull falls through to: `hub/library/alpine`. */
  cache: MirrorTarget;
}

export type RepositoryRoute = { kind: "mirror"; target: MirrorTarget } | { kind: "group"; target: GroupTarget };

/** The entry whose prefix is the longest that `name` starts with and goes beyond. */
function longestPrefix<T extends { prefix: string }>(sorted: readonly T[], name: string): T | undefined {
  return sorted.find((entry) => name.startsWith(entry.prefix) && name.length > entry.prefix.length);
}

const longestFirst = <T extends { prefix: string }>(entries: readonly T[]): T[] =>
  [...entries].sort((a, b) => b.prefix.length - a.prefix.length);

function mirrorTarget(mirror: MirrorConfig, name: string): MirrorTarget {
  return {
    name,
    remoteName: name.slice(mirror.prefix.length),
    upstream: mirror.upstream,
    tagTtlMs: mirror.tagTtlSeconds * 1000,
  };
}

/**
 * Which repositories are mirrors or groups, and of what: the longest matching prefix, over both lists,
 * decides. A group's cache is found among the mirrors only, so a group never falls through to a group.
 */
export function createMirrorRoutes(mirrors: readonly MirrorConfig[], groups: readonly GroupConfig[] = []) {
  const sortedMirrors = longestFirst(mirrors);
  const entries = longestFirst<{ prefix: string } & ({ mirror: MirrorConfig } | { group: GroupConfig })>([
    ...mirrors.map((mirror) => ({ prefix: mirror.prefix, mirror })),
    ...groups.map((group) => ({ prefix: group.prefix, group })),
  ]);

  /** The mirror or group `name` is in, or undefined for an ordinary repository of the built-in registry. */
  function route(name: string): RepositoryRoute | undefined {
    const entry = longestPrefix(entries, name);
    if (!entry) return undefined;
    if ("mirror" in entry) return { kind: "mirror", target: mirrorTarget(entry.mirror, name) };
    const cacheName = `${entry.group.mirror}${name.slice(entry.prefix.length)}`;
    const mirror = longestPrefix(sortedMirrors, cacheName);
    return mirror && { kind: "group", target: { name, cache: mirrorTarget(mirror, cacheName) } };
  }

  return {
    route,
    /** The mirror `name` is in, if it is mirrored (and not in a group). */
    find(name: string): MirrorTarget | undefined {
      const found = route(name);
      return found?.kind === "mirror" ? found.target : undefined;
    },
  };
}

export type MirrorRoutes = ReturnType<typeof createMirrorRoutes>;
