import type { AuditLog } from "../audit/audit-log.js";
import { AuthenticatorUnavailable } from "../auth/authn/authenticator.js";
import type { AccessClaims } from "../auth/token/tokens.js";
import type { Logger } from "../log.js";
import { createAccessControl, sendChallenge } from "./access-control.js";
import { createActRecorder, requestContext } from "./audit-acts.js";
import type { RegistryBackend } from "./backend.js";
import type { ForwardedResolver } from "./forwarded.js";
import type { Metrics } from "./metrics.js";
import type { RateLimits } from "./rate-limits.js";
import { sendRegistryError } from "./responses.js";
import type { GatewayAuth } from "./server.js";
import type { V2Request } from "./v2-request.js";

export interface RegistryGuardDeps {
  auth: GatewayAuth;
  audit: AuditLog;
  forwarded: ForwardedResolver;
  backend: RegistryBackend;
  rateLimits?: RateLimits;
  metrics: Metrics;
  logger: Logger;
}

const uploadEndpoints = new Set(["upload.start", "upload.chunk", "upload.complete"]);

/**
 * Every `/v2/` request needs a token that allows what the endpoint does, within the caller's request
 * budget; the catalog is cut to what the caller may pull; the acts that pass are recorded.
 */
export function createRegistryGuard(deps: RegistryGuardDeps): (request: V2Request) => void {
  const { auth, audit, forwarded, metrics, logger } = deps;
  const access = createAccessControl({ tokens: auth.tokens });
  const recordActs = createActRecorder({ audit, forwarded, logger });

  /** What the caller may pull, decided once per catalog request (one directory lookup, not one per repository). */
  async function pullFilter(request: V2Request, claims: AccessClaims): Promise<(repository: string) => boolean> {
    const identity = claims.subject ? await auth.credentials.lookup(claims.subject) : undefined;
    const subject = {
      account: identity?.name,
      groups: identity?.groups ?? [],
      clientIp: forwarded(request.req).clientAddress,
    };
    return (repository) => auth.policy.decide(subject, repository).actions.includes("pull");
  }

  async function handle(request: V2Request): Promise<void> {
    const { req, res, route } = request;
    const outcome = await access(request);
    if (outcome.kind === "challenge") {
      if (outcome.error) metrics.authFailure(outcome.error);
      if (outcome.error === "insufficient_scope" && outcome.scope) {
        audit.record({
          action: "denied",
          result: "denied",
          actor: { name: outcome.subject ?? "" },
          request: requestContext(req, forwarded),
          target: outcome.scope.type === "repository" ? { repository: outcome.scope.name } : {},
          detail: { needed: outcome.scope.actions },
        });
      }
      return sendChallenge(res, forwarded(req), auth.service, outcome);
    }
    const { claims } = outcome;
    const blocked = await deps.rateLimits?.request(claims.subject, forwarded(req).clientAddress);
    if (blocked) {
      metrics.authFailure("rate_limited");
      audit.record({
        action: "rate-limit",
        result: "denied",
        actor: { name: claims.subject },
        request: requestContext(req, forwarded),
        detail: { limit: blocked.limit, reason: blocked.reason, retryAfterSeconds: blocked.retryAfterSeconds },
      });
      sendRegistryError(res, 429, "TOOMANYREQUESTS", `${blocked.reason}; retry after ${blocked.retryAfterSeconds} s`, {
        "Retry-After": String(blocked.retryAfterSeconds),
      });
      return;
    }
    if (uploadEndpoints.has(route.endpoint.id)) {
      metrics.uploadStarted();
      res.once("close", () => metrics.uploadEnded());
    }
    const mayList = route.endpoint.id === "catalog" ? await pullFilter(request, claims) : undefined;
    deps.backend.serve(request, { observe: recordActs(request, claims.subject), mayList });
  }

  return function guard(request: V2Request): void {
    const { res } = request;
    handle(request).catch((error: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (error instanceof AuthenticatorUnavailable) {
        logger.error({ source: error.source, reason: error.message }, "authenticator unavailable");
        return sendRegistryError(res, 503, "UNAVAILABLE", "the user directory is not reachable; try again shortly", {
          "Retry-After": "5",
        });
      }
      logger.error({ err: error, requestId: request.requestId }, "request failed in the gateway");
      sendRegistryError(res, 500, "UNKNOWN", "internal error");
    });
  };
}
