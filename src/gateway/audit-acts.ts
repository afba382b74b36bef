import type { IncomingMessage } from "node:http";
import type { AuditLog } from "../audit/audit-log.js";
import type { AuditEvent } from "../audit/event.js";
import { splitUrl } from "../http/request-url.js";
import type { FoundRoute } from "./access-control.js";
import { looksLikeDigest } from "../registry/digest.js";
import { maxManifestBytes } from "../registry/manifest.js";
import type { ForwardedResolver } from "./forwarded.js";

/** The request part of an audit record: who asked, from where, with what. */
export function requestContext(req: IncomingMessage, forwarded: ForwardedResolver): NonNullable<AuditEvent["request"]> {
  return {
    id: String(req.headers["x-request-id"] ?? ""),
    addr: forwarded(req).clientAddress,
    method: req.method,
    useragent: String(req.headers["user-agent"] ?? ""),
  };
}

/**
 * Records the registry acts that pass through the gateway — manifest pushes and pulls, mounts, deletes —
 * from the upstream's answer, before that answer is passed on (http-proxy emits `proxyRes` before it
 * writes the response), so an act the client saw succeed is always on record.
 */
export function createActRecorder(deps: { audit: AuditLog; forwarded: ForwardedResolver }) {
  return function watch(
    req: IncomingMessage,
    route: FoundRoute,
    actor: string,
  ): ((upstream: IncomingMessage) => void) | undefined {
    const { query } = splitUrl(req.url ?? "/");
    const repository = route.params.name as string;
    const reference = route.params.reference;
    const tag = reference && !looksLikeDigest(reference) ? reference : undefined;
    const base = (): Pick<AuditEvent, "actor" | "request"> => ({
      actor: { name: actor },
      request: requestContext(req, deps.forwarded),
    });
    const result = (status: number): AuditEvent["result"] => (status < 400 ? "success" : "failure");

    switch (route.endpoint.id) {
      case "manifest.put": {
        const body = teeSmallBody(req);
        return (upstream) => {
          const digest =
            header(upstream, "docker-content-digest") ??
            (reference && looksLikeDigest(reference) ? reference : undefined);
          const manifest = body();
          deps.audit.record({
            ...base(),
            action: "push",
            result: result(upstream.statusCode ?? 0),
            target: {
              repository,
              ...(tag ? { tag } : {}),
              ...(digest ? { digest } : {}),
              mediaType: String(req.headers["content-type"] ?? "").split(";")[0] || manifestMediaType(manifest),
              ...(manifest ? { size: totalSize(manifest) } : {}),
            },
            ...(upstream.statusCode && upstream.statusCode >= 400 ? { detail: { status: upstream.statusCode } } : {}),
          });
        };
      }
      case "manifest.get":
        if (req.method !== "GET") return undefined;
        return (upstream) => {
          if (upstream.statusCode !== 200) return;
          deps.audit.record({
            ...base(),
            action: "pull",
            result: "success",
            target: {
              repository,
              ...(tag ? { tag } : {}),
              digest: header(upstream, "docker-content-digest"),
              mediaType: header(upstream, "content-type"),
              size: Number(header(upstream, "content-length") ?? 0),
            },
          });
        };
      case "manifest.delete":
      case "blob.delete":
        return (upstream) => {
          deps.audit.record({
            ...base(),
            action: "delete",
            result: result(upstream.statusCode ?? 0),
            target: { repository, ...(tag ? { tag } : { digest: reference ?? route.params.digest }) },
            ...(upstream.statusCode && upstream.statusCode >= 400 ? { detail: { status: upstream.statusCode } } : {}),
          });
        };
      case "upload.start": {
        const mount = query.get("mount");
        if (mount === null) return undefined;
        return (upstream) => {
          if (upstream.statusCode !== 201) return;
          deps.audit.record({
            ...base(),
            action: "mount",
            result: "success",
            target: { repository, digest: mount },
            detail: { from: query.get("from") },
          });
        };
      }
      default:
        return undefined;
    }
  };
}

function header(res: IncomingMessage, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Keeps a copy of a manifest body as it streams past (bounded: manifests are at most 4 MiB). */
function teeSmallBody(req: IncomingMessage): () => Record<string, unknown> | undefined {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size <= maxManifestBytes) chunks.push(chunk);
  });
  return () => {
    if (size > maxManifestBytes) return undefined;
    try {
      return JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
}

function manifestMediaType(manifest: Record<string, unknown> | undefined): string | undefined {
  return typeof manifest?.mediaType === "string" ? manifest.mediaType : undefined;
}

/** What the push stored in all: the config and layers of an image, or the manifests an index lists. */
function totalSize(manifest: Record<string, unknown>): number {
  const sizes = [
    manifest.config,
    ...(Array.isArray(manifest.layers) ? manifest.layers : []),
    ...(Array.isArray(manifest.manifests) ? manifest.manifests : []),
  ].map((d) => (d && typeof (d as { size?: unknown }).size === "number" ? (d as { size: number }).size : 0));
  return sizes.reduce((a, b) => a + b, 0);
}
