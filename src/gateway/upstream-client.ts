import { request } from "node:http";
import { request as httpsRequest } from "node:https";
import type { UpstreamTarget } from "./proxy.js";

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A small request of the gateway's own to the registry behind it (not a client's bytes: those are proxied). */
export function upstreamGet(
  upstream: UpstreamTarget,
  path: string,
  headers: Record<string, string> = {},
): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const callback = (res: import("node:http").IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    };
    const send = upstream.url.startsWith("https:") ? httpsRequest : request;
    const req = send(new URL(path, upstream.url), { headers }, callback);
    req.setTimeout(30_000, () => req.destroy(new Error("upstream timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** The registry behind us answers at all (any status below 500: `/v2/` may well want a token). */
export async function checkUpstream(upstream: UpstreamTarget): Promise<void> {
  let res: UpstreamResponse;
  try {
    res = await upstreamGet(upstream, "/v2/");
  } catch (error) {
    throw new Error(`the registry behind the gateway is not reachable: ${(error as Error).message}`);
  }
  if (res.status >= 500) throw new Error(`the registry behind the gateway answers ${res.status}`);
}
