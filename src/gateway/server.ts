import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { SecureContextOptions } from "node:tls";
import { splitUrl } from "../http/request-url.js";
import type { Logger } from "../log.js";
import { createCaPages, type CaSource } from "./ca-pages.js";
import { createForwardedResolver } from "./forwarded.js";
import { createRegistryProxy, type UpstreamTarget } from "./proxy.js";
import { sendText } from "./responses.js";

export interface GatewayTls {
  certChainPem: string;
  keyPem: string;
}

export interface GatewayOptions {
  /** `HOST:PORT`; port 0 picks a free one. */
  host: string;
  port: number;
  tls: GatewayTls;
  ca: CaSource;
  upstream: UpstreamTarget;
  trustedProxies: readonly string[];
  publicUrl?: string;
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
  const forwarded = createForwardedResolver({ trustedProxies: options.trustedProxies, publicUrl: options.publicUrl });
  const proxy = createRegistryProxy({ upstream: options.upstream, forwarded, logger });
  const ca = createCaPages(options.ca);
  const read = ["GET", "HEAD"];

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
    {
      methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
      match: (p) => p === "/v2" || p.startsWith("/v2/"),
      handle: proxy,
    },
  ];

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
