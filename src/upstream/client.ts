import { readFileSync } from "node:fs";
import type { Agent, IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { UpstreamEntryConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { parseChallenge, type Challenge } from "./challenge.js";
import { UpstreamError } from "./errors.js";
import { createTokenCache, type TokenCache } from "./token-cache.js";
import { fetchUpstreamToken } from "./token-service.js";
import { createTransport } from "./transport.js";

/** One entry of `upstreams`, with its name. */
export type UpstreamConfig = UpstreamEntryConfig & { name: string };

export interface UpstreamRequest {
  /** GET, HEAD, PUT, PATCH, POST, DELETE */
  method: string;
  /** "/v2/library/alpine/manifests/latest" (path + query), on the upstream */
  path: string;
  /**
   * The repository scope the request needs on the upstream, e.g. "repository:library/alpine:pull"; several
   * separated by spaces ("repository:a:pull,push repository:b:pull" for a cross-repository mount).
   */
  scope?: string;
  /** Passed on as they are, except `Authorization` and `Host`, which are the client's own. */
  headers?: Record<string, string | string[]>;
  /** streamed, never buffered */
  body?: NodeJS.ReadableStream;
  signal?: AbortSignal;
}

export interface UpstreamClient {
  readonly name: string;
  readonly url: URL;
  /**
   * One request with the gateway's own credentials (Basic, or a Bearer token Portcullis fetched from the
   * upstream's token service for `scope`, cached until it expires, fetched again once on a 401). Resolves
   * when the response headers arrive; the caller reads or destroys the body. Errors (refused, timeout, TLS,
   * credentials the token service refuses) reject with an UpstreamError whose message names the upstream.
   */
  request(request: UpstreamRequest): Promise<IncomingMessage>;
  /**
   * The `Authorization` value the gateway's account sends for `scope` (none for an upstream without auth), for
   * a proxy that sends the request itself. Rejects with an UpstreamError as `request` does.
   */
  authorization(scope: string): Promise<string | undefined>;
  /** The upstream answered 401 to `authorization`: a cached token in it is not used again. */
  refused(scope: string, authorization: string | undefined): void;
  /** Kept-alive connections to the upstream, trusting its `ca`. */
  readonly agent: Agent;
  close(): void;
}

/** How the upstream wants the gateway to sign in, as its `/v2/` challenge said. */
type AuthScheme =
  { kind: "none" } | { kind: "basic" } | { kind: "bearer"; challenge: Challenge & { scheme: "bearer" } };

const ownHeaders = new Set([
  "authorization",
  "host",
  "connection",
  "keep-alive",
  "proxy-authorization",
  "te",
  "upgrade",
]);

/**
 * A client for one upstream registry. The way to sign in is learnt from the upstream's unauthenticated
 * `GET /v2/` (once, and again when a request meets a 401); Bearer tokens are cached per scope. The
 * credentials are read once here and never appear in a log line or an error.
 */
export function createUpstreamClient(
  config: UpstreamConfig,
  deps: { logger: Logger; now?: () => number },
): UpstreamClient {
  const name = config.name;
  const url = new URL(config.url);
  const logger = deps.logger.child({ upstream: name });
  const transport = createTransport({
    upstream: name,
    caPem: config.ca === undefined ? undefined : readConfigFile(name, "ca", config.ca),
    connectTimeoutMs: config.connectTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
  });
  const basicAuthorization = config.username === undefined ? undefined : basic(config.username, password(config));

  let scheme: Promise<AuthScheme> | undefined;
  let tokens: TokenCache | undefined;

  function useChallenge(challenge: Challenge | undefined): AuthScheme {
    if (challenge?.scheme === "bearer") {
      tokens = createTokenCache({
        fetch: (scope) => {
          logger.debug({ scope }, "fetching a token from the upstream's token service");
          return fetchUpstreamToken({ upstream: name, transport, basicAuthorization, now: deps.now }, challenge, scope);
        },
        now: deps.now,
      });
      return { kind: "bearer", challenge };
    }
    tokens = undefined;
    return challenge?.scheme === "basic" ? { kind: "basic" } : { kind: "none" };
  }

  function discover(): Promise<AuthScheme> {
    scheme ??= transport
      .send(new URL("/v2/", url), { method: "GET", headers: {} })
      .then((res) => {
        res.resume();
        return useChallenge(res.statusCode === 401 ? parseChallenge(res.headers["www-authenticate"]) : undefined);
      })
      .catch((error: unknown) => {
        scheme = undefined;
        throw error;
      });
    return scheme;
  }

  async function authorization(current: AuthScheme, scope: string): Promise<string | undefined> {
    if (current.kind === "basic") return basicAuthorization;
    if (current.kind === "bearer" && tokens) return `Bearer ${await tokens.get(scope)}`;
    return undefined;
  }

  function headersFor(request: UpstreamRequest, auth: string | undefined): OutgoingHttpHeaders {
    const headers: OutgoingHttpHeaders = {};
    for (const [key, value] of Object.entries(request.headers ?? {}))
      if (!ownHeaders.has(key.toLowerCase())) headers[key] = value;
    if (auth) headers.authorization = auth;
    return headers;
  }

  async function send(request: UpstreamRequest, current: AuthScheme): Promise<{ res: IncomingMessage; auth?: string }> {
    const auth = await authorization(current, request.scope ?? "");
    const res = await transport.send(new URL(request.path, url), {
      method: request.method,
      headers: headersFor(request, auth),
      body: request.body,
      signal: request.signal,
    });
    return { res, auth };
  }

  return {
    name,
    url,
    agent: transport.agent(url.protocol),
    async authorization(scope) {
      return authorization(await discover(), scope);
    },
    refused(scope, auth) {
      if (auth?.startsWith("Bearer ")) tokens?.invalidate(scope, auth.slice("Bearer ".length));
    },
    async request(request) {
      const current = await discover();
      const first = await send(request, current);
      if (first.res.statusCode !== 401) return first.res;
      // The token expired early or was revoked, or the upstream changed how it signs in: learn again from
      // this answer's challenge. A streamed body cannot be sent twice, so only a request without one is retried.
      const challenge = parseChallenge(first.res.headers["www-authenticate"]);
      const scope = request.scope ?? "";
      if (current.kind === "bearer" && challenge?.scheme === "bearer" && challenge.realm === current.challenge.realm)
        tokens?.invalidate(scope, first.auth?.replace(/^Bearer /, "") ?? "");
      else if (challenge) scheme = Promise.resolve(useChallenge(challenge));
      if (request.body) return first.res;
      const next = await discover();
      if (next.kind === "none" || (next.kind === "basic" && current.kind === "basic")) return first.res;
      first.res.resume();
      logger.debug({ path: request.path }, "the upstream answered 401; signing in again");
      return (await send(request, next)).res;
    },
    close() {
      transport.close();
    },
  };
}

function basic(username: string, secret: string): string {
  return `Basic ${Buffer.from(`${username}:${secret}`).toString("base64")}`;
}

function password(config: UpstreamConfig): string {
  if (config.password !== undefined) return config.password;
  if (config.passwordFile === undefined) return "";
  const line = readConfigFile(config.name, "passwordFile", config.passwordFile).split(/\r?\n/)[0] ?? "";
  if (!line)
    throw new UpstreamError(config.name, "config", `the first line of passwordFile ${config.passwordFile} is empty`);
  return line;
}

function readConfigFile(upstream: string, key: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new UpstreamError(
      upstream,
      "config",
      `cannot read upstreams.${upstream}.${key} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}
