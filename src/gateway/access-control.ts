import type { ServerResponse } from "node:http";
import { formatScope, type ResourceAccess } from "../auth/token/scope.js";
import { TokenInvalid, type AccessClaims, type Tokens } from "../auth/token/tokens.js";
import { isValidRepositoryName } from "../registry/names.js";
import { bearerToken } from "./basic-auth.js";
import type { ForwardedResolver } from "./forwarded.js";
import { sendRegistryError } from "./responses.js";
import type { V2Request } from "./v2-request.js";

export type AccessOutcome =
  | { kind: "allowed"; claims: AccessClaims }
  | {
      kind: "challenge";
      scope?: ResourceAccess;
      error?: "invalid_token" | "insufficient_scope";
      message: string;
      subject?: string;
    };

/**
 * Decides whether a `/v2/` request may pass, from its bearer token and the action the API table says the
 * endpoint needs. A cross-repository mount whose token cannot pull from the source repository is turned
 * into an ordinary upload (the mount parameters are dropped) instead of being refused.
 */
export function createAccessControl(deps: { tokens: Tokens }) {
  return async function check(request: V2Request): Promise<AccessOutcome> {
    const { req, route, path, query } = request;
    const name = route.params.name;
    const needed: ResourceAccess | undefined =
      route.endpoint.needs === "nothing"
        ? undefined
        : route.endpoint.needs === "catalog"
          ? { type: "registry", name: "catalog", actions: ["*"] }
          : { type: "repository", name: name as string, actions: [...route.endpoint.needs] };

    const token = bearerToken(req);
    if (!token) return { kind: "challenge", scope: needed, message: "authentication required" };
    let claims: AccessClaims;
    try {
      claims = await deps.tokens.verify(token);
    } catch (error) {
      if (!(error instanceof TokenInvalid)) throw error;
      return { kind: "challenge", scope: needed, error: "invalid_token", message: `invalid token: ${error.message}` };
    }
    if (needed && !covers(claims.access, needed)) {
      return {
        kind: "challenge",
        scope: needed,
        error: "insufficient_scope",
        message: `this token does not allow ${formatScope(needed)}`,
        subject: claims.subject,
      };
    }
    const from = query.get("mount") !== null ? query.get("from") : null;
    if (
      from !== null &&
      (!isValidRepositoryName(from) || !covers(claims.access, { type: "repository", name: from, actions: ["pull"] }))
    ) {
      query.delete("mount");
      query.delete("from");
      const rest = query.toString();
      req.url = rest ? `${path}?${rest}` : path;
    }
    return { kind: "allowed", claims };
  };
}

function covers(access: readonly ResourceAccess[], needed: ResourceAccess): boolean {
  const granted = access.find((a) => a.type === needed.type && a.name === needed.name);
  return (
    !!granted && needed.actions.every((action) => granted.actions.includes(action) || granted.actions.includes("*"))
  );
}

/**
 * The `WWW-Authenticate` challenge (distribution `docs/spec/auth/token.md`). Every value is quoted, a scope
 * is never empty, and one challenge names one scope: containerd, podman and docker each parse it.
 */
export function bearerChallenge(
  publicBase: string,
  service: string,
  outcome: Extract<AccessOutcome, { kind: "challenge" }>,
): string {
  const parts = [`realm="${publicBase}/token"`, `service="${service}"`];
  if (outcome.scope) parts.push(`scope="${formatScope(outcome.scope)}"`);
  if (outcome.error) parts.push(`error="${outcome.error}"`);
  return `Bearer ${parts.join(",")}`;
}

export function sendChallenge(
  res: ServerResponse,
  forwarded: ReturnType<ForwardedResolver>,
  service: string,
  outcome: Extract<AccessOutcome, { kind: "challenge" }>,
): void {
  const { scope } = outcome;
  const detail = scope?.actions.map((action) => ({ Type: scope.type, Name: scope.name, Action: action }));
  sendRegistryError(
    res,
    401,
    "UNAUTHORIZED",
    outcome.message,
    { "WWW-Authenticate": bearerChallenge(forwarded.publicBase, service, outcome) },
    detail,
  );
}
