import { formatScope, type ResourceAccess } from "../auth/token/scope.js";
import type { V2Request } from "./v2-request.js";

/**
 * The scope the gateway's own account asks the upstream's token service for, to send `request` on: what the
 * API table says the endpoint needs, plus pull on the source of a cross-repository mount ("" for `/v2/`).
 */
export function upstreamScope({ route, query }: V2Request): string {
  const { needs } = route.endpoint;
  if (needs === "nothing") return "";
  if (needs === "catalog") return formatScope({ type: "registry", name: "catalog", actions: ["*"] });
  const scopes: ResourceAccess[] = [{ type: "repository", name: route.params.name as string, actions: [...needs] }];
  const from = query.get("mount") !== null ? query.get("from") : null;
  if (from !== null && from !== route.params.name) scopes.push({ type: "repository", name: from, actions: ["pull"] });
  return scopes.map(formatScope).join(" ");
}
