import type { IncomingMessage, ServerResponse } from "node:http";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import httpProxy from "http-proxy";
import type { Logger } from "../log.js";
import type { ForwardedResolver } from "./forwarded.js";
import { sendRegistryError } from "./responses.js";

export interface UpstreamTarget {
  url: string;
}

/**
 * Streams `/v2/` requests to a V2 registry upstream and their responses back, byte for byte. Absolute `Location` headers for `/v2/` paths are rewritten to
 * our public URL, whatever host the upstream believed it had.
 */
export function createRegistryProxy(options: {
  upstream: UpstreamTarget;
  forwarded: ForwardedResolver;
  logger: Logger;
}) {
  const { upstream, forwarded, logger } = options;
  const proxy = httpProxy.createProxyServer({
    target: upstream.url,
    changeOrigin: true,
    ws: false,
    xfwd: false,
    // Connections to the upstream are kept and reused; one idle for five minutes mid-request is given up.
    agent: upstream.url.startsWith("https:") ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true }),
    proxyTimeout: 5 * 60 * 1000,
    timeout: 5 * 60 * 1000,
  });

  const observers = new WeakMap<IncomingMessage, (upstream: IncomingMessage) => void>();
  proxy.on("proxyRes", (proxyRes, req, res: ServerResponse) => {
    const location = proxyRes.headers.location;
    if (location) proxyRes.headers.location = publicLocation(location, forwarded(req).publicBase);
    // The upstream answered before it read the whole body (an early refusal): the rest of that body is still
    // on the client's connection, which therefore cannot carry another request. It closes after this answer.
    if (!req.complete) proxyRes.headers.connection = "close";
    observers.get(req)?.(proxyRes);
    if (res.destroyed) proxyRes.destroy();
  });

  /** `observe` sees the upstream's answer before any of it reaches the client. */
  return function forward(
    req: IncomingMessage,
    res: ServerResponse,
    observe?: (upstream: IncomingMessage) => void,
  ): void {
    if (observe) observers.set(req, observe);
    // Set on the incoming headers, which http-proxy copies: its proxyReq event can come after a body that
    // arrived early has already flushed the outgoing headers.
    const view = forwarded(req);
    const publicUrl = new URL(view.publicBase);
    req.headers["x-forwarded-proto"] = publicUrl.protocol.slice(0, -1);
    req.headers["x-forwarded-host"] = publicUrl.host;
    req.headers["x-forwarded-for"] = view.clientAddress;
    delete req.headers.forwarded;
    proxy.web(req, res, {}, (error) => {
      logger.warn({ err: error, url: req.url }, "upstream registry unreachable");
      if (!res.headersSent) {
        sendRegistryError(
          res,
          503,
          "UNAVAILABLE",
          "the registry behind the gateway is not reachable; try again shortly",
        );
      } else {
        res.destroy();
      }
    });
  };
}

export function publicLocation(location: string, publicBase: string): string {
  if (location.startsWith("/")) return `${publicBase}${location}`;
  let parsed: URL;
  try {
    parsed = new URL(location);
  } catch {
    return location;
  }
  // Only our own API paths are moved; a redirect to blob storage elsewhere stays as it is.
  return parsed.pathname.startsWith("/v2/") ? `${publicBase}${parsed.pathname}${parsed.search}` : location;
}
