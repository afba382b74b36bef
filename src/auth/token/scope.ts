/** One entry of a token's `access` claim, and of a requested scope (distribution `docs/spec/auth/scope.md`). */
export interface ResourceAccess {
  type: "repository" | "registry";
  name: string;
  actions: string[];
}

export const repositoryActions = ["pull", "push", "delete"] as const;
export type RepositoryAction = (typeof repositoryActions)[number];

/**
 * Parses scope strings such as `repository:team/app:pull,push` or `registry:catalog:*`. A value may hold
 * several space-separated scopes (the OAuth form), and a name may hold one `:` (`host:5000/app`), so the
 * type is split off the front and the actions off the back. Unknown types and actions are dropped, never
 * an error.
 */
export function parseScopes(values: readonly string[]): ResourceAccess[] {
  const merged = new Map<string, ResourceAccess>();
  for (const value of values) {
    for (const text of value.split(" ").filter(Boolean)) {
      const first = text.indexOf(":");
      const last = text.lastIndexOf(":");
      if (first < 0 || last === first) continue;
      const type = text.slice(0, first);
      const name = text.slice(first + 1, last);
      const actions = text.slice(last + 1).split(",");
      if (!name) continue;
      let access: ResourceAccess | undefined;
      if (type === "repository") {
        access = {
          type,
          name,
          actions: actions.flatMap((a) => (a === "*" ? [...repositoryActions] : isRepositoryAction(a) ? [a] : [])),
        };
      } else if (type === "registry" && name === "catalog") {
        access = { type, name, actions: actions.filter((a) => a === "*") };
      }
      if (!access || access.actions.length === 0) continue;
      const key = `${access.type}:${access.name}`;
      const existing = merged.get(key);
      merged.set(key, existing ? { ...existing, actions: union(existing.actions, access.actions) } : access);
    }
  }
  return [...merged.values()];
}

export function isRepositoryAction(action: string): action is RepositoryAction {
  return (repositoryActions as readonly string[]).includes(action);
}

export function formatScope(access: ResourceAccess): string {
  return `${access.type}:${access.name}:${access.actions.join(",")}`;
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])];
}
