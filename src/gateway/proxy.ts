import type { IncomingMessage, ServerResponse } from "node:http";
import httpProxy from "http-proxy";
import type { Logger } from "../log.js";
import type { UpstreamClient } from "../upstream/client.js";
import type { ForwardedResolver } from "./forwarded.js";
import { sendRegistryError } from "./responses.js";

/** What one forwarded request carries besides the client's own bytes. */
export interface ForwardOptions {
  /** The gateway's own `Authorization` on the upstream; the client's never goes there. */
  authorization?: string;
  /** Sees the upstream's answer before any of it reaches the client; may answer the client itself instead. */
  observe?: (upstream: IncomingMessage) => void;
}

/**
 * Streams `/v2/` requests to a V2 registry upstream and their responses back, byte for byte, over the
 * upstream client's kept-alive connections (and so its CA). Absolute `Location` headers for `/v2/` paths
 * are rewritten to our public URL, whatever host the upstream believed it had.
 */
export function createRegistryProxy(options: {
  upstream: UpstreamClient;
  forwarded: ForwardedResolver;
  logger: Logger;
}) {
  const { upstream, forwarded, logger } = options;
  const proxy = httpProxy.createProxyServer({
    target: upstream.url.origin,
    changeOrigin: true,
    ws: false,
    xfwd: false,
    agent: upstream.agent,
    // One request idle for five minutes is given up.
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
    // An observer that answered the client itself leaves http-proxy nothing to send.
    else if (res.headersSent) proxyRes.resume();
  });

  return function forward(req: IncomingMessage, res: ServerResponse, forwardOptions: ForwardOptions = {}): void {
    const { authorization, observe } = forwardOptions;
    if (observe) observers.set(req, observe);
    if (authorization) req.headers.authorization = authorization;
    else delete req.headers.authorization;
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
