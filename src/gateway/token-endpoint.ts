import type { IncomingMessage, ServerResponse } from "node:http";
import { AuditUnavailable } from "../audit/audit-log.js";
import { AuthenticatorUnavailable, CredentialsRejected, type Identity } from "../auth/authn/authenticator.js";
import type { CredentialCheck } from "../auth/authn/credential-check.js";
import type { Policy } from "../auth/authz/policy.js";
import { grantAccess } from "../auth/token/grant.js";
import type { RefreshTokens } from "../auth/token/refresh-tokens.js";
import { formatScope, parseScopes } from "../auth/token/scope.js";
import type { Tokens } from "../auth/token/tokens.js";
import { splitUrl } from "../http/request-url.js";
import type { Logger } from "../log.js";
import type { AuditLog } from "../audit/audit-log.js";
import { requestContext } from "./audit-acts.js";
import { basicCredentials } from "./basic-auth.js";
import type { ForwardedResolver } from "./forwarded.js";
import type { Metrics } from "./metrics.js";
import { badCredentials, OAuthError, sendOAuthError } from "./oauth-errors.js";
import type { Blocked, RateLimits } from "./rate-limits.js";

export interface TokenEndpointDeps {
  credentials: CredentialCheck;
  policy: Policy;
  tokens: Tokens;
  refreshTokens: RefreshTokens;
  service: string;
  anonymous: boolean;
  forwarded: ForwardedResolver;
  logger: Logger;
  audit: AuditLog;
  metrics: Metrics;
  rateLimits?: RateLimits;
}

const anonymousIdentity: Identity = { name: "", groups: [], source: "anonymous", credentialStamp: "" };
const maxFormBytes = 64 * 1024;

/**
 * The Docker token endpoint (distribution `docs/spec/auth/token.md`, `oauth.md`): `GET /token` with Basic
 * credentials or none, and `POST /token` with the OAuth 2 password and refresh_token grants.
 */
export function createTokenEndpoint(deps: TokenEndpointDeps) {
  const { credentials, tokens, refreshTokens, service, logger, audit, metrics, rateLimits } = deps;

  function refuse(req: IncomingMessage, actor: string, blocked: Blocked): OAuthError {
    metrics.authFailure("rate_limited");
    audit.record({
      action: "rate-limit",
      result: "denied",
      actor: { name: actor },
      request: requestContext(req, deps.forwarded),
      detail: { limit: blocked.limit, reason: blocked.reason, retryAfterSeconds: blocked.retryAfterSeconds },
    });
    return new OAuthError(429, "slow_down", `${blocked.reason}; retry after ${blocked.retryAfterSeconds} s`, {
      "Retry-After": String(blocked.retryAfterSeconds),
    });
  }

  async function verify(req: IncomingMessage, username: string, password: string, grant: string): Promise<Identity> {
    const login = (result: "success" | "failure", source?: string) =>
      audit.record({
        action: "login",
        result,
        actor: { name: username, ...(source ? { source } : {}) },
        request: requestContext(req, deps.forwarded),
        detail: { grant },
      });
    const ip = deps.forwarded(req).clientAddress;
    // One lockout per account however its name is capitalised: directories match names without case.
    const account = username.toLowerCase();
    const locked = await rateLimits?.checkLogin(account, ip);
    if (locked) throw refuse(req, username, locked);
    try {
      const identity = await credentials.verify(username, password);
      login("success", identity.source);
      await rateLimits?.loginSucceeded(account, ip);
      return identity;
    } catch (error) {
      if (error instanceof CredentialsRejected) {
        login("failure");
        metrics.authFailure("bad_credentials");
        await rateLimits?.loginFailed(account, ip);
        throw badCredentials();
      }
      if (error instanceof AuthenticatorUnavailable) throw directoryDown(error);
      throw error;
    }
  }

  /** A user directory that cannot answer is a 503 to retry, never "wrong password" and never a 500. */
  function directoryDown(error: AuthenticatorUnavailable): OAuthError {
    metrics.authFailure("directory_unavailable");
    logger.error({ source: error.source, reason: error.message }, "authenticator unavailable");
    return new OAuthError(
      503,
      "temporarily_unavailable",
      `the ${error.source} user directory is not reachable; try again shortly`,
      {
        "Retry-After": "5",
      },
    );
  }

  function checkService(asked: string | null): void {
    if (asked !== null && asked !== service)
      throw new OAuthError(400, "invalid_request", `unknown service "${asked}"; this server is "${service}"`);
  }

  async function answer(
    req: IncomingMessage,
    res: ServerResponse,
    identity: Identity,
    scopes: string[],
    grant: string,
    refreshToken?: string,
  ): Promise<void> {
    const requested = parseScopes(scopes);
    const anonymous = identity.source === "anonymous";
    const subject = {
      account: anonymous ? undefined : identity.name,
      groups: identity.groups,
      clientIp: deps.forwarded(req).clientAddress,
    };
    const access = grantAccess(deps.policy, subject, requested, !anonymous || deps.anonymous);
    const issued = await tokens.issue(identity.name, access);
    metrics.tokenIssued(grant);
    const asked = { requested: requested.map(formatScope), granted: access.map(formatScope) };
    logger.info({ grant, subject: identity.name || "(anonymous)", source: identity.source, ...asked }, "token issued");
    audit.record({
      action: "token",
      result: "success",
      actor: { name: identity.name, source: identity.source },
      request: requestContext(req, deps.forwarded),
      detail: { grant, ...asked },
    });
    const body = Buffer.from(
      JSON.stringify({
        token: issued.token,
        access_token: issued.token,
        expires_in: issued.expiresIn,
        issued_at: issued.issuedAt,
        ...(refreshToken ? { refresh_token: refreshToken } : {}),
      }),
    );
    res.writeHead(200, {
      "Content-Type": "application/json",
      "Content-Length": body.length,
      "Cache-Control": "no-store",
      Pragma: "no-cache",
    });
    res.end(body);
  }

  async function get(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { query } = splitUrl(req.url ?? "/");
    checkService(query.get("service"));
    const basic = basicCredentials(req);
    const account = query.get("account");
    if (basic && account !== null && account !== basic.username) {
      throw new OAuthError(400, "invalid_request", "account does not match the user in the Authorization header");
    }
    let identity: Identity;
    if (basic) identity = await verify(req, basic.username, basic.password, "basic");
    else if (deps.anonymous) identity = anonymousIdentity;
    else
      throw new OAuthError(401, "invalid_client", "authentication required: log in first", {
        "WWW-Authenticate": 'Basic realm="portcullis"',
      });
    const offline = query.get("offline_token") === "true" && identity.source !== "anonymous";
    await answer(
      req,
      res,
      identity,
      query.getAll("scope"),
      basic ? "basic" : "anonymous",
      offline ? refreshTokens.issue(identity, service) : undefined,
    );
  }

  async function post(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const type = String(req.headers["content-type"] ?? "")
      .split(";")[0]
      ?.trim()
      .toLowerCase();
    if (type !== "application/x-www-form-urlencoded") {
      throw new OAuthError(400, "invalid_request", "POST /token takes an application/x-www-form-urlencoded form");
    }
    const form = new URLSearchParams(await readForm(req));
    checkService(form.get("service"));
    const scopes = form.getAll("scope");
    switch (form.get("grant_type")) {
      case "password": {
        const username = form.get("username");
        const password = form.get("password");
        if (!username || password === null)
          throw new OAuthError(400, "invalid_request", "the password grant needs username and password");
        const identity = await verify(req, username, password, "password");
        const offline = form.get("access_type") === "offline";
        await answer(
          req,
          res,
          identity,
          scopes,
          "password",
          offline ? refreshTokens.issue(identity, service) : undefined,
        );
        return;
      }
      case "refresh_token": {
        const token = form.get("refresh_token") ?? "";
        const claims = refreshTokens.read(token, service);
        let identity: Identity | undefined;
        try {
          identity = claims && (await credentials.lookup(claims.sub));
        } catch (error) {
          if (error instanceof AuthenticatorUnavailable) throw directoryDown(error);
          throw error;
        }
        if (!claims || !identity || identity.source !== claims.src || identity.credentialStamp !== claims.cred) {
          audit.record({
            action: "login",
            result: "failure",
            actor: { name: claims?.sub ?? "" },
            request: requestContext(req, deps.forwarded),
            detail: { grant: "refresh_token" },
          });
          throw new OAuthError(401, "invalid_grant", "the refresh token is invalid or was revoked: log in again");
        }
        // The same refresh token goes back: docker keeps the first one it got (moby #39718).
        await answer(req, res, identity, scopes, "refresh_token", token);
        return;
      }
      case null:
        throw new OAuthError(400, "invalid_request", "grant_type is required");
      default:
        throw new OAuthError(400, "unsupported_grant_type", "supported grant types: password, refresh_token");
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const blocked = await rateLimits?.tokenRequest(deps.forwarded(req).clientAddress);
    if (blocked) throw refuse(req, "", blocked);
    await (req.method === "POST" ? post : get)(req, res);
  }

  return function endpoint(req: IncomingMessage, res: ServerResponse): void {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof OAuthError) return sendOAuthError(res, error);
      if (error instanceof AuditUnavailable) {
        // The token would be an act on no record: refused, to be asked for again once the audit disk takes writes.
        logger.error({ reason: error.message }, "token not issued: its audit record could not be written");
        const retry = { "Retry-After": "5" };
        return sendOAuthError(
          res,
          new OAuthError(503, "temporarily_unavailable", `audit log: ${error.message}`, retry),
        );
      }
      logger.error({ err: error }, "token request failed");
      sendOAuthError(res, new OAuthError(500, "temporarily_unavailable", "internal error"));
    });
  };
}

async function readForm(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxFormBytes) throw new OAuthError(400, "invalid_request", "form too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
