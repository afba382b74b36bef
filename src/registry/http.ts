import type { IncomingMessage, ServerResponse } from "node:http";
import type { ByteRange } from "./storage/driver.js";
import { rangeInvalid, RegistryError } from "./errors.js";
import type { OutcomeObserver } from "./outcome.js";

/** One registry request, matched against the API table once by whoever received it. */
export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  path: string;
  query: URLSearchParams;
  requestId: string;
  /** `https://host[:port]` that `Location` headers start with, as the client sees us; relative when absent. */
  publicBase?: string;
  /** Told what the request did, just before its answer is written. */
  observe?: OutcomeObserver;
  /** The repositories the caller may see in the catalog; all of them when absent. */
  mayList?: (repository: string) => boolean;
}

/** A `Location` header for one of our API paths: absolute on the public URL when the caller gave one. */
export function locationOf(ctx: Pick<RequestContext, "publicBase">, path: string): string {
  return `${ctx.publicBase ?? ""}${path}`;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const content = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": content.length, ...headers });
  res.end(res.req.method === "HEAD" ? undefined : content);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string | number> = {}): void {
  res.writeHead(status, { "Content-Length": 0, ...headers });
  res.end();
}

export function sendError(res: ServerResponse, error: RegistryError): void {
  sendJson(res, error.status, error.toJSON());
}

/** The declared body length, or undefined when the body is chunked or absent. */
export function contentLength(req: IncomingMessage): number | undefined {
  const value = req.headers["content-length"];
  if (value === undefined) return undefined;
  const length = Number(value);
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RegistryError("SIZE_INVALID", "invalid Content-Length", { contentLength: value });
  }
  return length;
}

export function hasBody(req: IncomingMessage): boolean {
  return (contentLength(req) ?? 0) > 0 || req.headers["transfer-encoding"] !== undefined;
}

/** `Content-Range: <start>-<end>` on an upload chunk (spec.md, "Pushing a blob in chunks"). */
export function parseContentRange(value: string | undefined): ByteRange | undefined {
  if (value === undefined) return undefined;
  const match = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(value.trim());
  if (!match) throw rangeInvalid("malformed Content-Range", { contentRange: value });
  const range = { start: Number(match[1]), end: Number(match[2]) };
  if (range.end < range.start) throw rangeInvalid("Content-Range ends before it starts", { contentRange: value });
  return range;
}

export type RangeRequest = { kind: "whole" } | { kind: "range"; range: ByteRange } | { kind: "unsatisfiable" };

/** A `Range: bytes=…` request header against a blob of `size` bytes (RFC 9110 §14.1.2, single ranges only). */
export function parseRangeHeader(value: string | undefined, size: number): RangeRequest {
  if (value === undefined) return { kind: "whole" };
  const match = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!match || (match[1] === "" && match[2] === "")) return { kind: "unsatisfiable" };
  let start: number;
  let end: number;
  if (match[1] === "") {
    const suffix = Number(match[2]);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start > end || start >= size) return { kind: "unsatisfiable" };
  return { kind: "range", range: { start, end } };
}

/** Reads a small body (a manifest) up to `limit` bytes; more is refused with 413 before it is all read. */
export async function readSmallBody(
  req: IncomingMessage,
  limit: number,
  tooLarge: () => RegistryError,
): Promise<Buffer> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
