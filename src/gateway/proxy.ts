import type { IncomingMessage, ServerResponse } from "node:http";
import httpProxy from "http-proxy";
import type { Logger } from "../log.js";
import type { ForwardedResolver } from "./forwarded.js";
import { sendRegistryError } from "./responses.js";

export type UpstreamTarget = { socketPath: string } | { url: string };

/**
 * Streams `/v2/` requests to the registry behind us (the built-in one on a unix socket, or any V2 registry)
 * and their responses back, byte for byte. Absolute `Location` headers for `/v2/` paths are rewritten to
 * our public URL, whatever host the upstream believed it had.
 */
export function createRegistryProxy(options: {
  upstream: UpstreamTarget;
  forwarded: ForwardedResolver;
  logger: Logger;
}) {
  const { upstream, forwarded, logger } = options;
  const proxy = httpProxy.createProxyServer({
    // http-proxy passes socketPath through to http.request; its types insist on host and port.
    target:
      "socketPath" in upstream
        ? ({ socketPath: upstream.socketPath } as unknown as httpProxy.ServerOptions["target"])
        : upstream.url,
    changeOrigin: "url" in upstream,
    ws: false,
    xfwd: false,
    proxyTimeout: 0,
  });

  proxy.on("proxyReq", (proxyReq, req) => {
    const view = forwarded(req);
    const publicUrl = new URL(view.publicBase);
    proxyReq.setHeader("X-Forwarded-Proto", publicUrl.protocol.slice(0, -1));
    proxyReq.setHeader("X-Forwarded-Host", publicUrl.host);
    proxyReq.setHeader("X-Forwarded-For", view.clientAddress);
    proxyReq.removeHeader("forwarded");
  });

  proxy.on("proxyRes", (proxyRes, req) => {
    const location = proxyRes.headers.location;
    if (location) proxyRes.headers.location = publicLocation(location, forwarded(req).publicBase);
  });

  return function forward(req: IncomingMessage, res: ServerResponse): void {
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
