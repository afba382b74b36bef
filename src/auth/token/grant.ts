import type { Policy, Subject } from "../authz/policy.js";
import type { ResourceAccess } from "./scope.js";

/**
 * What a token may say: each requested repository scope cut down to what the policy allows (asked-for
 * actions it does not allow are dropped, and the token is still issued), and the catalog for callers
 * allowed to list it.
 */
export function grantAccess(
  policy: Policy,
  subject: Subject,
  requested: readonly ResourceAccess[],
  catalogAllowed: boolean,
): ResourceAccess[] {
  const granted: ResourceAccess[] = [];
  for (const scope of requested) {
    if (scope.type === "registry") {
      if (catalogAllowed) granted.push({ ...scope, actions: ["*"] });
      continue;
    }
    const allowed = policy.decide(subject, scope.name).actions as string[];
    const actions = scope.actions.filter((a) => allowed.includes(a));
    if (actions.length > 0) granted.push({ type: "repository", name: scope.name, actions });
  }
  return granted;
}
