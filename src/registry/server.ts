import { createServer, type Server } from "node:http";
import { rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { parseListen } from "../http/listen-address.js";
import type { Logger } from "../log.js";
import { createRegistry } from "./app.js";
import { createFilesystemDriver } from "./storage/filesystem.js";

export interface RegistryServer {
  /** `http://HOST:PORT` for a TCP listener, `unix:PATH` for a socket. */
  url: string;
  server: Server;
  close(): Promise<void>;
}

export interface RegistryServerOptions {
  root: string;
  /** `HOST:PORT` (port 0 picks a free one) or `unix:PATH`. */
  listen: string;
  logger?: Logger;
}

/** The registry layer alone on a loopback port or a unix socket: it has no auth, so never expose it. */
export async function startRegistryServer({ root, listen, logger }: RegistryServerOptions): Promise<RegistryServer> {
  const { listener } = createRegistry({ storage: createFilesystemDriver(root), logger });
  const server = createServer({ requestTimeout: 0, keepAliveTimeout: 65_000 }, listener);
  const target = parseListen(listen);
  if ("socket" in target) await rm(target.socket, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if ("socket" in target) server.listen(target.socket, resolve);
    else server.listen(target.port, target.host, resolve);
  });
  const address = server.address();
  const url =
    "socket" in target ? `unix:${target.socket}` : `http://${formatHost(target.host)}:${(address as AddressInfo).port}`;
  return {
    url,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
