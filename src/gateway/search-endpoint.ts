import type { IncomingMessage, ServerResponse } from "node:http";
import { CredentialsRejected } from "../auth/authn/authenticator.js";
import type { Subject } from "../auth/authz/policy.js";
import { TokenInvalid } from "../auth/token/tokens.js";
import { splitUrl } from "../http/request-url.js";
import type { Logger } from "../log.js";
import { bearerChallenge } from "./access-control.js";
import { basicCredentials, bearerToken } from "./basic-auth.js";
import type { ForwardedResolver } from "./forwarded.js";
import type { RateLimits } from "./rate-limits.js";
import { sendText } from "./responses.js";
import type { GatewayAuth } from "./server.js";

export interface SearchEndpointDeps {
  /** Without it every caller sees every repository (the gateway in front of a registry with no auth). */
  auth?: Pick<GatewayAuth, "service" | "credentials" | "policy" | "tokens">;
  repositories: () => Promise<string[]>;
  forwarded: ForwardedResolver;
  rateLimits?: RateLimits;
  logger: Logger;
}

/** What docker's daemon decodes (moby `registry.SearchResults`); the Hub's extra paging fields beside it. */
interface SearchResults {
  query: string;
  num_results: number;
  num_pages: number;
  page: number;
  page_size: number;
  results: { name: string; description: string; star_count: number; is_official: boolean; is_automated: boolean }[];
}

const defaultPageSize = 25;
const maxPageSize = 100;

type Caller =
  { kind: "known"; subject: Subject } | { kind: "refused"; status: number; headers: Record<string, string> };

/**
 * The registry v1 search API that `docker search HOST/TERM` calls (`GET /v1/search?q=&n=&page=`, after a
 * `GET /v1/_ping`): repository names containing TERM, only those the caller may pull. docker logged in to
 * us sends a bearer token it got with its identity token (scope `registry:catalog:search`, which grants
 * nothing: the token only says who it is); without a login it sends nothing, or Basic credentials.
 */
export function createSearchEndpoint(deps: SearchEndpointDeps) {
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
    sendText(res, status, "application/json", `${JSON.stringify(body)}\n`, headers);

  async function identify(req: IncomingMessage): Promise<Caller> {
    const clientIp = deps.forwarded(req).clientAddress;
    const { auth } = deps;
    if (!auth) return { kind: "known", subject: { groups: [], clientIp } };
    const known = async (account: string | undefined): Promise<Caller> => {
      const identity = account ? await auth.credentials.lookup(account) : undefined;
      return { kind: "known", subject: { account: identity?.name, groups: identity?.groups ?? [], clientIp } };
    };
    const token = bearerToken(req);
    if (token) {
      try {
        return await known((await auth.tokens.verify(token)).subject || undefined);
      } catch (error) {
        if (!(error instanceof TokenInvalid)) throw error;
        const challenge = bearerChallenge(deps.forwarded(req).publicBase, auth.service, {
          kind: "challenge",
          error: "invalid_token",
          message: error.message,
        });
        return { kind: "refused", status: 401, headers: { "WWW-Authenticate": challenge } };
      }
    }
    // docker sends Basic on every v1 request, an empty pair when nobody logged in: that is anonymous.
    const basic = basicCredentials(req);
    if (!basic?.username) return known(undefined);
    const account = basic.username.toLowerCase();
    const locked = await deps.rateLimits?.checkLogin(account, clientIp);
    if (locked) return { kind: "refused", status: 429, headers: { "Retry-After": String(locked.retryAfterSeconds) } };
    try {
      const identity = await auth.credentials.verify(basic.username, basic.password);
      return { kind: "known", subject: { account: identity.name, groups: identity.groups, clientIp } };
    } catch (error) {
      if (!(error instanceof CredentialsRejected)) throw error;
      await deps.rateLimits?.loginFailed(account, clientIp);
      return { kind: "refused", status: 401, headers: { "WWW-Authenticate": 'Basic realm="portcullis"' } };
    }
  }

  async function search(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { query } = splitUrl(req.url ?? "/");
    const term = (query.get("q") ?? "").trim().toLowerCase();
    const pageSize = Number(query.get("n") ?? defaultPageSize);
    const page = Number(query.get("page") ?? 1);
    if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > maxPageSize)
      return json(res, 400, { error: `n must be a whole number from 1 to ${maxPageSize}` });
    if (!Number.isSafeInteger(page) || page < 1) return json(res, 400, { error: "page must be a whole number from 1" });
    const caller = await identify(req);
    if (caller.kind === "refused") return json(res, caller.status, { error: "not signed in" }, caller.headers);
    const blocked = await deps.rateLimits?.request(caller.subject.account ?? "", caller.subject.clientIp);
    if (blocked) return json(res, 429, { error: blocked.reason }, { "Retry-After": String(blocked.retryAfterSeconds) });
    const mayPull = (repository: string) =>
      !deps.auth || deps.auth.policy.decide(caller.subject, repository).actions.includes("pull");
    const matches = (await deps.repositories()).filter((name) => name.includes(term) && mayPull(name));
    const results: SearchResults = {
      query: query.get("q") ?? "",
      num_results: matches.length,
      num_pages: Math.max(1, Math.ceil(matches.length / pageSize)),
      page,
      page_size: pageSize,
      results: matches.slice((page - 1) * pageSize, page * pageSize).map((name) => ({
        name,
        description: "",
        star_count: 0,
        is_official: false,
        is_automated: false,
      })),
    };
    json(res, 200, results);
  }

  return {
    search(req: IncomingMessage, res: ServerResponse): void {
      search(req, res).catch((error: unknown) => {
        deps.logger.warn({ err: error }, "search failed");
        if (!res.headersSent) json(res, 503, { error: "search is not available now; try again shortly" });
        else res.destroy();
      });
    },
    /** docker pings the v1 endpoint before it searches; any answer will do. */
    ping(_req: IncomingMessage, res: ServerResponse): void {
      json(res, 200, {});
    },
  };
}
