import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { SecureContextOptions } from "node:tls";
import { noAudit, type AuditLog } from "../audit/audit-log.js";
import type { AuthStack } from "../auth/from-config.js";
import { splitUrl } from "../http/request-url.js";
import { requestLogLevel, type Logger } from "../log.js";
import { matchEndpoint } from "../registry/api.js";
import type { Registry } from "../registry/app.js";
import { isValidRepositoryName } from "../registry/names.js";
import type { RegistryBackend } from "./backend.js";
import { builtInBackend } from "./built-in-backend.js";
import { createCaPages, type CaSource } from "./ca-pages.js";
import { createConsole, type ConsoleRegistry } from "./console/routes.js";
import type { Sessions } from "./console/sessions.js";
import { createForwardedResolver } from "./forwarded.js";
import { createHealth, type ReadinessCheck } from "./health.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { createPolicyEndpoint } from "./policy-endpoint.js";
import type { UpstreamClient } from "../upstream/client.js";
import type { RateLimits } from "./rate-limits.js";
import { createRegistryGuard } from "./registry-guard.js";
import { createSearchEndpoint } from "./search-endpoint.js";
import { sendRegistryError, sendText } from "./responses.js";
import { createTokenEndpoint } from "./token-endpoint.js";
import type { V2Request } from "./v2-request.js";

export interface GatewayTls {
  certChainPem: string;
  keyPem: string;
}

/** Token authentication; without it the gateway lets every request through (the registry layer's own tests). */
export type GatewayAuth = Pick<
  AuthStack,
  "service" | "anonymous" | "adminGroup" | "credentials" | "policy" | "tokens" | "refreshTokens" | "keyring"
>;

export interface GatewayOptions {
  /**
   * A port of its own (0 picks a free one), or connections another part accepted on `port` and hands to
   * `accept` (the listening socket `serve`'s processes share).
   */
  listen: { host: string; port: number } | { handed: true; port: number };
  tls: GatewayTls;
  /** 48 bytes that encrypt TLS session tickets; processes sharing them resume each other's sessions. */
  sessionTicketKeys?: Buffer;
  ca: CaSource;
  /** The built-in registry (in this process), a V2 registry to stream to, or a backend composed by the caller. */
  registry: { builtIn: Registry } | { upstream: UpstreamClient } | { backend: RegistryBackend };
  trustedProxies: readonly string[];
  publicUrl?: string;
  auth?: GatewayAuth;
  /** Where security-relevant acts are recorded; nothing is recorded without it. */
  audit?: AuditLog;
  rateLimits?: RateLimits;
  /** The web console at `/` (with `auth`); `registry` is absent with an upstream, which the console says. */
  console?: { sessions: Sessions; registry?: ConsoleRegistry; auditDir?: string };
  /** Named checks behind `/readyz` (storage writable, upstream reachable, …). */
  readiness?: Record<string, ReadinessCheck>;
  /** Limits on slow and greedy clients; each has a default. */
  limits?: Partial<ConnectionLimits>;
  logger: Logger;
}

export interface ConnectionLimits {
  /** The TLS handshake and a request's headers must arrive within this (a slowloris is cut). */
  headerTimeoutMs: number;
  /** A connection that sends and receives nothing for this long is closed, mid-body too (nginx's 60 s). */
  idleTimeoutMs: number;
  /** Open connections one client address may hold in this process; more are closed at once. */
  connectionsPerAddress: number;
}

export const defaultConnectionLimits: ConnectionLimits = Object.freeze({
  headerTimeoutMs: 20_000,
  idleTimeoutMs: 60_000,
  connectionsPerAddress: 256,
});

export interface Gateway {
  server: Server;
  port: number;
  /** Serves a connection accepted elsewhere. */
  accept(socket: Socket): void;
  metrics: Metrics;
  /** Swaps the certificate for new connections; connections already open keep theirs. */
  reloadTls(tls: GatewayTls): void;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
type V2Handler = (request: V2Request) => void;

/** One row of the gateway's own routes; `/v2/` rows are named after the registry endpoint they reach. */
interface Route {
  name: string;
  methods: readonly string[];
  match: (path: string) => boolean;
  handle: Handler;
}

const tlsVersions = { minVersion: "TLSv1.2", maxVersion: "TLSv1.3" } as const;
const read = ["GET", "HEAD"];
const exactly = (path: string) => (p: string) => p === path;

function secureContext(tls: GatewayTls, ticketKeys?: Buffer): SecureContextOptions & { ticketKeys?: Buffer } {
  return { cert: tls.certChainPem, key: tls.keyPem, ...tlsVersions, ...(ticketKeys ? { ticketKeys } : {}) };
}

/** The HTTPS front door: CA distribution, tokens, health and metrics, and `/v2/` streamed to the registry. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { logger, auth } = options;
  const audit = options.audit ?? noAudit;
  const metrics = createMetrics();
  const forwarded = createForwardedResolver({ trustedProxies: options.trustedProxies, publicUrl: options.publicUrl });
  const backend: RegistryBackend =
    "backend" in options.registry
      ? options.registry.backend
      : "builtIn" in options.registry
        ? builtInBackend(options.registry.builtIn, forwarded)
        : // http-proxy is loaded only for an upstream.
          (await import("./upstream-backend.js")).upstreamBackend({
            upstream: options.registry.upstream,
            forwarded,
            logger,
          });
  const ca = createCaPages(options.ca);
  const health = createHealth(options.readiness ?? {});
  const deps = { audit, forwarded, metrics, logger, rateLimits: options.rateLimits };

  const redirectToCa: Handler = (_req, res) => sendText(res, 302, "text/plain", "see /ca\n", { Location: "/ca" });
  const renderMetrics: Handler = (_req, res) =>
    sendText(res, 200, "text/plain; version=0.0.4; charset=utf-8", metrics.render());
  const registry: V2Handler = auth
    ? createRegistryGuard({ ...deps, auth, backend })
    : (request) => backend.serve(request);
  const underV2 = (p: string) => p === "/v2" || p.startsWith("/v2/");
  const search = createSearchEndpoint({ ...deps, auth, repositories: () => backend.repositories() });
  const webConsole = auth && options.console ? createConsole({ ...auth, ...deps, ...options.console }) : undefined;

  // prettier-ignore
  const routes: Route[] = [
    ...(webConsole
      ? webConsole.paths.map((path) => ({ name: "console", methods: [...read, "POST"], match: exactly(path), handle: webConsole.handle }))
      : [{ name: "root", methods: read, match: exactly("/"), handle: redirectToCa }]),
    { name: "ca",      methods: read, match: (p) => p === "/ca" || p === "/ca/",     handle: ca.page },
    { name: "ca",      methods: read, match: exactly("/ca.crt"),                     handle: ca.pem },
    { name: "ca",      methods: read, match: exactly("/ca.der"),                     handle: ca.der },
    { name: "ca",      methods: read, match: exactly("/ca/install.sh"),              handle: ca.script },
    { name: "ca",      methods: read, match: exactly("/ca/doctor.sh"),               handle: ca.doctor },
    { name: "healthz", methods: read, match: exactly("/healthz"),                    handle: health.healthz },
    { name: "readyz",  methods: read, match: exactly("/readyz"),                     handle: (req, res) => void health.readyz(req, res) },
    { name: "metrics", methods: read, match: exactly("/metrics"),                    handle: renderMetrics },
    { name: "search",  methods: read, match: exactly("/v1/search"),                  handle: search.search },
    { name: "search",  methods: read, match: exactly("/v1/_ping"),                   handle: search.ping },
    ...(auth ? [
      { name: "token", methods: ["GET", "POST"], match: exactly("/token"),           handle: createTokenEndpoint({ ...auth, ...deps }) },
      { name: "jwks",  methods: read, match: exactly("/.well-known/jwks.json"),      handle: jwks(auth) },
      { name: "signing-certificates", methods: read, match: exactly("/token/signing.crt"), handle: signingCertificates(auth) },
      { name: "policy", methods: read, match: exactly("/policy/check"),              handle: createPolicyEndpoint(auth) },
    ] : []),
  ];

  const limits = { ...defaultConnectionLimits, ...options.limits };
  // No limit on a whole request (a layer upload takes as long as it takes), but its headers must come in
  // time, and a connection that sends and receives nothing for the idle time is closed. Node derives
  // `headersTimeout` from `requestTimeout` (min of the two), so with no request limit it must be set itself.
  const server = createServer(
    {
      ...secureContext(options.tls, options.sessionTicketKeys),
      requestTimeout: 0,
      headersTimeout: limits.headerTimeoutMs,
      handshakeTimeout: limits.headerTimeoutMs,
      connectionsCheckingInterval: Math.min(1_000, limits.headerTimeoutMs),
      keepAliveTimeout: 65_000,
    },
    (req, res) => {
      const { path, query } = splitUrl(req.url ?? "/");
      const requestId = randomUUID();
      req.headers["x-request-id"] = requestId;
      try {
        if (underV2(path)) return serveV2(req, res, path, query, requestId);
        const route = routes.find((r) => r.match(path));
        observe(req, res, route?.name ?? "unknown", path, requestId);
        if (!route) {
          sendText(
            res,
            404,
            "text/plain; charset=utf-8",
            "not found: the registry API is under /v2/, the CA under /ca\n",
          );
        } else if (!route.methods.includes(req.method ?? "GET")) {
          const allow = { Allow: route.methods.join(", ") };
          sendText(res, 405, "text/plain; charset=utf-8", `${req.method} is not allowed here\n`, allow);
        } else {
          route.handle(req, res);
        }
      } catch (error) {
        // A handler that throws answers 500 for this request only; it never takes the process down.
        logger.error({ err: error, path }, "request failed in the gateway");
        if (!res.headersSent) sendText(res, 500, "text/plain; charset=utf-8", "internal error\n");
        else res.destroy();
      }
    },
  );
  server.timeout = limits.idleTimeoutMs;
  limitConnectionsPerAddress(server, limits.connectionsPerAddress, logger);
  server.on("tlsClientError", (error) => logger.debug({ err: error }, "TLS handshake failed"));

  /**
   * A `/v2/` request, matched against the API table once: only what the API has passes, so a registry behind
   * us never sees a request no scope covers; and only valid names, so one an upstream would decode
   * differently (`prod%2Fapp`) cannot slip past a policy.
   */
  function serveV2(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, requestId: string) {
    const method = req.method ?? "GET";
    const route = matchEndpoint(method, path);
    observe(req, res, route.kind === "found" ? route.endpoint.id : "v2.unknown", path, requestId);
    if (route.kind === "not-found") return sendRegistryError(res, 404, "UNSUPPORTED", "no such endpoint");
    if (route.kind === "wrong-method") {
      const allow = { Allow: [...new Set(route.allowed)].join(", ") };
      return sendRegistryError(res, 405, "UNSUPPORTED", `${method} is not supported here`, allow);
    }
    const name = route.params.name;
    if (name !== undefined && !isValidRepositoryName(name)) {
      return sendRegistryError(res, 400, "NAME_INVALID", "invalid repository name");
    }
    registry({ req, res, method, path, query, route, requestId });
  }

  const socketMarks = new WeakMap<object, { read: number; written: number }>();

  /** The access log line and the request metrics, when the response is done. */
  function observe(req: IncomingMessage, res: ServerResponse, route: string, path: string, requestId: string): void {
    const started = process.hrtime.bigint();
    const socket = req.socket;
    res.once("close", () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const status = res.headersSent ? res.statusCode : 0;
      // Bytes on the connection since the previous response on it ended: this request's share, TLS included.
      const mark = socketMarks.get(socket) ?? { read: 0, written: 0 };
      const now = { read: socket.bytesRead, written: socket.bytesWritten };
      socketMarks.set(socket, now);
      metrics.request(route, req.method ?? "GET", status, seconds, now.read - mark.read, now.written - mark.written);
      logger[requestLogLevel(path)](
        {
          requestId,
          method: req.method,
          path,
          status,
          ms: Math.round(seconds * 1000),
          remote: socket.remoteAddress,
        },
        "request",
      );
    });
  }

  const { listen } = options;
  if (!("handed" in listen)) {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(listen.port, listen.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  }

  return {
    server,
    port: "handed" in listen ? listen.port : (server.address() as AddressInfo).port,
    accept: (socket) => void server.emit("connection", socket),
    metrics,
    reloadTls(tls) {
      server.setSecureContext(secureContext(tls, options.sessionTicketKeys));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Closes a client's connections beyond `limit` as they arrive, so one address cannot hold every socket. */
function limitConnectionsPerAddress(server: Server, limit: number, logger: Logger): void {
  const open = new Map<string, number>();
  server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "";
    const count = (open.get(address) ?? 0) + 1;
    if (count > limit) {
      logger.debug({ remote: address, limit }, "too many connections from one address; closing the newest");
      socket.destroy();
      return;
    }
    open.set(address, count);
    socket.once("close", () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
}

function jwks(auth: GatewayAuth): Handler {
  return (_req, res) =>
    sendText(
      res,
      200,
      "application/jwk-set+json",
      JSON.stringify({ keys: auth.keyring().verifying.map((k) => k.jwk) }),
    );
}

function signingCertificates(auth: GatewayAuth): Handler {
  return (_req, res) =>
    sendText(
      res,
      200,
      "application/x-pem-file",
      auth
        .keyring()
        .verifying.map((k) => k.certificatePem)
        .join(""),
    );
}
