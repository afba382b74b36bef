import type { IncomingMessage } from "node:http";
import type { Digest } from "../registry/digest.js";
import { RegistryError } from "../registry/errors.js";
import type { UpstreamClient } from "../upstream/client.js";
import { UpstreamError } from "../upstream/errors.js";
import type { MirrorTarget } from "./routes.js";

/** What a mirror asks its upstream for one repository; the answer's body is the caller's to read or drop. */
export async function askUpstream(
  client: UpstreamClient,
  target: MirrorTarget,
  method: "GET" | "HEAD",
  resource: string,
  headers: Record<string, string> = {},
): Promise<IncomingMessage> {
  return client.request({
    method,
    path: `/v2/${target.remoteName}/${resource}`,
    scope: `repository:${target.remoteName}:pull`,
    headers,
  });
}

/** Why the upstream gave nothing usable, as the error a client is answered with when nothing is cached. */
export function upstreamUnavailable(target: MirrorTarget, why: string): RegistryError {
  return new RegistryError(
    "UNAVAILABLE",
    `${target.name} is not cached, and upstream "${target.upstream}" cannot be asked for it (${why})`,
    { upstream: target.upstream },
    503,
  );
}

/** The upstream sent other content than the digest said (`what`: "a blob whose digest is not the one asked for"). */
export function wrongContent(target: MirrorTarget, what: string, expected: string, actual: string): RegistryError {
  return new RegistryError(
    "UNAVAILABLE",
    `upstream "${target.upstream}" sent ${what}; nothing was stored`,
    { expected, actual },
    502,
  );
}

/** A short reason for a log line or an error: the upstream's status, or how the request failed. */
export function describeFailure(failure: IncomingMessage | unknown): string {
  if (failure instanceof UpstreamError) return failure.message;
  const status = (failure as IncomingMessage).statusCode;
  if (status !== undefined) return `answered ${status}`;
  return (failure as Error).message;
}

/** What a fetch from the upstream stored in the cache. */
export interface CacheFill {
  digest: Digest;
  size: number;
}
