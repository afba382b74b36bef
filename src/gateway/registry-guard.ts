import type { IncomingMessage, ServerResponse } from "node:http";
import type { AuditLog } from "../audit/audit-log.js";
import { AuthenticatorUnavailable } from "../auth/authn/authenticator.js";
import type { AccessClaims } from "../auth/token/tokens.js";
import type { Logger } from "../log.js";
import { createAccessControl, sendChallenge } from "./access-control.js";
import { createActRecorder, requestContext } from "./audit-acts.js";
import { createCatalogView } from "./catalog-view.js";
import type { ForwardedResolver } from "./forwarded.js";
import type { Metrics } from "./metrics.js";
import type { UpstreamTarget } from "./proxy.js";
import type { RateLimits } from "./rate-limits.js";
import { sendRegistryError } from "./responses.js";
import type { GatewayAuth } from "./server.js";

export interface RegistryGuardDeps {
  auth: GatewayAuth;
  audit: AuditLog;
  forwarded: ForwardedResolver;
  proxy: (req: IncomingMessage, res: ServerResponse, observe?: (upstream: IncomingMessage) => void) => void;
  upstream: UpstreamTarget;
  rateLimits?: RateLimits;
  metrics: Metrics;
  logger: Logger;
}

const uploadEndpoints = new Set(["upload.start", "upload.chunk", "upload.complete"]);

/**
 * Every `/v2/` request needs a token that allows what the endpoint does, within the caller's request
 * budget; the catalog is cut to what the caller may pull; the acts that pass are recorded.
 */
export function createRegistryGuard(deps: RegistryGuardDeps) {
  const { auth, audit, forwarded, metrics, logger } = deps;
  const access = createAccessControl({ tokens: auth.tokens });
  const recordActs = createActRecorder({ audit, forwarded });
  const catalog = createCatalogView({ upstream: deps.upstream });

  /** What the caller may pull, decided once per catalog request (one directory lookup, not one per repository). */
  async function pullFilter(req: IncomingMessage, claims: AccessClaims): Promise<(repository: string) => boolean> {
    const identity = claims.subject ? await auth.credentials.lookup(claims.subject) : undefined;
    const subject = { account: identity?.name, groups: identity?.groups ?? [], clientIp: forwarded(req).clientAddress };
    return (repository) => auth.policy.decide(subject, repository).actions.includes("pull");
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const outcome = await access(req);
    if (outcome.kind === "refused") return sendRegistryError(res, outcome.status, outcome.code, outcome.message);
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
    const blocked = await deps.rateLimits?.request(outcome.claims.subject, forwarded(req).clientAddress);
    if (blocked) {
      metrics.authFailure("rate_limited");
      audit.record({
        action: "rate-limit",
        result: "denied",
        actor: { name: outcome.claims.subject },
        request: requestContext(req, forwarded),
        detail: { limit: blocked.limit, reason: blocked.reason, retryAfterSeconds: blocked.retryAfterSeconds },
      });
      sendRegistryError(res, 429, "TOOMANYREQUESTS", `${blocked.reason}; retry after ${blocked.retryAfterSeconds} s`, {
        "Retry-After": String(blocked.retryAfterSeconds),
      });
      return;
    }
    const { route, claims } = outcome;
    if (route.endpoint.id === "catalog") {
      await catalog(req, res, await pullFilter(req, claims));
      return;
    }
    if (uploadEndpoints.has(route.endpoint.id)) {
      metrics.uploadStarted();
      res.once("close", () => metrics.uploadEnded());
    }
    deps.proxy(req, res, recordActs(req, route, claims.subject));
  }

  return function guard(req: IncomingMessage, res: ServerResponse): void {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (error instanceof AuthenticatorUnavailable) {
        logger.error({ source: error.source, reason: error.message }, "authenticator unavailable");
        return sendRegistryError(res, 503, "UNAVAILABLE", "the user directory is not reachable; try again shortly", {
          "Retry-After": "5",
        });
      }
      logger.error({ err: error, url: req.url }, "request failed in the gateway");
      sendRegistryError(res, 500, "UNKNOWN", "internal error");
    });
  };
}
