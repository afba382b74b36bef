import type { IncomingMessage } from "node:http";
import { createAddressList } from "../http/address-list.js";
import { isRegistryName } from "../http/registry-name.js";

export interface ForwardedView {
  /** `https://host[:port]` as the client addressed us. */
  publicBase: string;
  /** The client's address: the socket's, or what a trusted proxy reported. */
  clientAddress: string;
}

/**
 * How a request looks from the client's side. `X-Forwarded-Proto/Host/For` are believed only when the
 * connection comes from a configured trusted proxy; from anyone else they are ignored, so a client cannot
 * make us point `Location` headers at a host of its choosing.
 */
export function createForwardedResolver(options: { trustedProxies: readonly string[]; publicUrl?: string }) {
  const isTrusted = createAddressList(options.trustedProxies, "trustedProxies");
  const fixedBase = options.publicUrl?.replace(/\/+$/, "");

  return function resolve(req: IncomingMessage): ForwardedView {
    const socketAddress = req.socket.remoteAddress ?? "";
    const viaTrustedProxy = isTrusted(socketAddress);
    const first = (name: string) => {
      const value = req.headers[name];
      return (Array.isArray(value) ? value[0] : value)?.split(",")[0]?.trim() || undefined;
    };
    let clientAddress = socketAddress;
    if (viaTrustedProxy) {
      const chain = String(req.headers["x-forwarded-for"] ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      // The nearest address that is not one of our proxies is the client.
      while (chain.length > 0 && isTrusted(chain[chain.length - 1])) chain.pop();
      clientAddress = chain.at(-1) ?? socketAddress;
    }
    if (fixedBase) return { publicBase: fixedBase, clientAddress };
    const proto = (viaTrustedProxy && first("x-forwarded-proto")) || "https";
    const claimed = (viaTrustedProxy && first("x-forwarded-host")) || req.headers.host;
    // A Host that is no host name (`a b`, `x/y`) would make a URL that cannot be parsed, or point elsewhere.
    const host = claimed && isRegistryName(claimed) ? claimed : "localhost";
    return { publicBase: `${proto === "http" ? "http" : "https"}://${host}`, clientAddress };
  };
}

export type ForwardedResolver = ReturnType<typeof createForwardedResolver>;
