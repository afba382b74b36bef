import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { SecureContextOptions } from "node:tls";
import { splitUrl } from "../http/request-url.js";
import type { Logger } from "../log.js";
import type { CredentialCheck } from "../auth/authn/credential-check.js";
import type { Policy } from "../auth/authz/policy.js";
import type { RefreshTokens } from "../auth/token/refresh-tokens.js";
import type { SigningKeyring } from "../auth/token/signing-keys.js";
import type { AccessClaims, Tokens } from "../auth/token/tokens.js";
import { noAudit, type AuditLog } from "../audit/audit-log.js";
import { createAccessControl, sendChallenge } from "./access-control.js";
import { createActRecorder, requestContext } from "./audit-acts.js";
import { createCaPages, type CaSource } from "./ca-pages.js";
import { createCatalogView } from "./catalog-view.js";
import { createTokenEndpoint } from "./token-endpoint.js";
import { createForwardedResolver } from "./forwarded.js";
import { createRegistryProxy, type UpstreamTarget } from "./proxy.js";
import { sendRegistryError, sendText } from "./responses.js";

export interface GatewayTls {
  certChainPem: string;
  keyPem: string;
}

/** Token authentication; without it the gateway lets every request through (the registry layer's own tests). */
export interface GatewayAuth {
  service: string;
  anonymous: boolean;
  credentials: CredentialCheck;
  policy: Policy;
  tokens: Tokens;
  refreshTokens: RefreshTokens;
  keyring: () => SigningKeyring;
}

export interface GatewayOptions {
  /** Where security-relevant acts are recorded; nothing is recorded without it. */
  audit?: AuditLog;
  /** `HOST:PORT`; port 0 picks a free one. */
  host: string;
  port: number;
  tls: GatewayTls;
  ca: CaSource;
  upstream: UpstreamTarget;
  trustedProxies: readonly string[];
  publicUrl?: string;
  auth?: GatewayAuth;
  logger: Logger;
}

export interface Gateway {
  server: Server;
  port: number;
  /** Swaps the certificate for new connections; connections already open keep theirs. */
  reloadTls(tls: GatewayTls): void;
  close(): Promise<void>;
}

type Route = {
  methods: readonly string[];
  match: (path: string) => boolean;
  handle: (req: IncomingMessage, res: ServerResponse) => void;
};

const tlsVersions = { minVersion: "TLSv1.2", maxVersion: "TLSv1.3" } as const;

function secureContext(tls: GatewayTls): SecureContextOptions {
  return { cert: tls.certChainPem, key: tls.keyPem, ...tlsVersions };
}

/** The HTTPS front door: CA distribution for humans and scripts, and `/v2/` streamed to the registry. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { logger } = options;
  const audit = options.audit ?? noAudit;
  const forwarded = createForwardedResolver({ trustedProxies: options.trustedProxies, publicUrl: options.publicUrl });
  const proxy = createRegistryProxy({ upstream: options.upstream, forwarded, logger });
  const ca = createCaPages(options.ca);
  const read = ["GET", "HEAD"];

  const registry = options.auth ? guard(options.auth) : proxy;

  const routes: Route[] = [
    {
      methods: read,
      match: (p) => p === "/",
      handle: (_req, res) => sendText(res, 302, "text/plain", "see /ca\n", { Location: "/ca" }),
    },
    { methods: read, match: (p) => p === "/ca" || p === "/ca/", handle: ca.page },
    { methods: read, match: (p) => p === "/ca.crt", handle: ca.pem },
    { methods: read, match: (p) => p === "/ca.der", handle: ca.der },
    { methods: read, match: (p) => p === "/ca/install.sh", handle: ca.script },
    ...(options.auth ? tokenRoutes(options.auth) : []),
    {
      methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
      match: (p) => p === "/v2" || p.startsWith("/v2/"),
      handle: registry,
    },
  ];

  function tokenRoutes(auth: GatewayAuth): Route[] {
    const endpoint = createTokenEndpoint({ ...auth, forwarded, logger, audit });
    return [
      { methods: ["GET", "POST"], match: (p) => p === "/token", handle: endpoint },
      {
        methods: read,
        match: (p) => p === "/.well-known/jwks.json",
        handle: (_req, res) =>
          sendText(
            res,
            200,
            "application/jwk-set+json",
            JSON.stringify({ keys: auth.keyring().verifying.map((k) => k.jwk) }),
          ),
      },
      {
        methods: read,
        match: (p) => p === "/token/signing.crt",
        handle: (_req, res) =>
          sendText(
            res,
            200,
            "application/x-pem-file",
            auth
              .keyring()
              .verifying.map((k) => k.certificatePem)
              .join(""),
          ),
      },
    ];
  }

  /** Every `/v2/` request needs a token that allows what the endpoint does; the catalog is cut to what the caller may pull. */
  function guard(auth: GatewayAuth) {
    const access = createAccessControl({ tokens: auth.tokens });
    const subjectOf = async (claims: AccessClaims, req: IncomingMessage) => {
      const identity = claims.subject ? await auth.credentials.lookup(claims.subject) : undefined;
      return { account: identity?.name, groups: identity?.groups ?? [], clientIp: forwarded(req).clientAddress };
    };
    const claimsOf = new WeakMap<IncomingMessage, AccessClaims>();
    const recordActs = createActRecorder({ audit, forwarded });
    const catalog = createCatalogView({
      upstream: options.upstream,
      mayPull: async (req, repository) => {
        const subject = await subjectOf(claimsOf.get(req) as AccessClaims, req);
        return auth.policy.decide(subject, repository).actions.includes("pull");
      },
    });
    return (req: IncomingMessage, res: ServerResponse) => {
      const run = async () => {
        const outcome = await access(req);
        if (outcome.kind === "challenge") {
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
        if (!outcome.catalog) return proxy(req, res, recordActs(req, outcome.claims.subject));
        claimsOf.set(req, outcome.claims);
        await catalog(req, res);
      };
      run().catch((error: unknown) => {
        logger.error({ err: error, url: req.url }, "request failed in the gateway");
        if (!res.headersSent) sendRegistryError(res, 500, "UNKNOWN", "internal error");
        else res.destroy();
      });
    };
  }

  const server = createServer(
    { ...secureContext(options.tls), requestTimeout: 0, keepAliveTimeout: 65_000 },
    (req, res) => {
      const started = process.hrtime.bigint();
      const requestId = randomUUID();
      req.headers["x-request-id"] = requestId;
      const { path } = splitUrl(req.url ?? "/");
      res.on("finish", () => {
        logger.info(
          {
            requestId,
            method: req.method,
            path,
            status: res.statusCode,
            ms: Number((process.hrtime.bigint() - started) / 1_000_000n),
            remote: req.socket.remoteAddress,
          },
          "request",
        );
      });
      const route = routes.find((r) => r.match(path));
      if (!route) {
        sendText(
          res,
          404,
          "text/plain; charset=utf-8",
          "not found: the registry API is under /v2/, the CA under /ca\n",
        );
        return;
      }
      if (!route.methods.includes(req.method ?? "GET")) {
        sendText(res, 405, "text/plain; charset=utf-8", `${req.method} is not allowed here\n`, {
          Allow: route.methods.join(", "),
        });
        return;
      }
      route.handle(req, res);
    },
  );
  server.on("tlsClientError", (error) => logger.debug({ err: error }, "TLS handshake failed"));

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });

  return {
    server,
    port: (server.address() as AddressInfo).port,
    reloadTls(tls) {
      server.setSecureContext(secureContext(tls));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
