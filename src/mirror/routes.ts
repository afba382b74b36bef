import type { MirrorConfig } from "../config/schema.js";

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

/** Which repositories are mirrors, and of what: the longest matching prefix decides. */
export function createMirrorRoutes(mirrors: readonly MirrorConfig[]) {
  const byLength = [...mirrors].sort((a, b) => b.prefix.length - a.prefix.length);
  return {
    find(name: string): MirrorTarget | undefined {
      const mirror = byLength.find((m) => name.startsWith(m.prefix) && name.length > m.prefix.length);
      if (!mirror) return undefined;
      return {
        name,
        remoteName: name.slice(mirror.prefix.length),
        upstream: mirror.upstream,
        tagTtlMs: mirror.tagTtlSeconds * 1000,
      };
    },
  };
}

export type MirrorRoutes = ReturnType<typeof createMirrorRoutes>;
