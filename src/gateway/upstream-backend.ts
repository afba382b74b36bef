import type { IncomingMessage } from "node:http";
import { looksLikeDigest, parseDigest, type Digest } from "../registry/digest.js";
import { maxManifestBytes, parseManifest } from "../registry/manifest.js";
import type { RegistryOutcome } from "../registry/outcome.js";
import type { Logger } from "../log.js";
import type { RegistryBackend } from "./backend.js";
import { createCatalogView, upstreamRepositories } from "./catalog-view.js";
import type { ForwardedResolver } from "./forwarded.js";
import { createRegistryProxy, type UpstreamTarget } from "./proxy.js";
import type { V2Request } from "./v2-request.js";

/**
 * Another V2 registry, streamed to through http-proxy. What a request did is read from the upstream's
 * answer (its status and headers, and the manifest body as it streamed past), before the answer is passed on.
 */
export function upstreamBackend(deps: {
  upstream: UpstreamTarget;
  forwarded: ForwardedResolver;
  logger: Logger;
}): RegistryBackend {
  const proxy = createRegistryProxy(deps);
  const catalog = createCatalogView({ upstream: deps.upstream });

  return {
    serve(request, options = {}) {
      const { req, res, route } = request;
      if (route.endpoint.id === "catalog" && options.mayList) {
        catalog(req, res, options.mayList).catch((error: unknown) => {
          deps.logger.warn({ err: error }, "upstream catalog unreachable");
          res.destroy();
        });
        return;
      }
      const observe = options.observe;
      if (!observe) return proxy(req, res);
      const outcomeOf = outcomeReader(request);
      proxy(req, res, (upstream) => {
        const outcome = outcomeOf(upstream);
        if (outcome) observe(outcome);
      });
    },
    repositories: () => upstreamRepositories(deps.upstream),
  };
}

/** Turns the upstream's answer to this request into what the request did, for the acts worth recording. */
function outcomeReader({ req, route, query }: V2Request): (upstream: IncomingMessage) => RegistryOutcome | undefined {
  const status = (upstream: IncomingMessage) => upstream.statusCode ?? 0;
  const digestHeader = (upstream: IncomingMessage) =>
    digestIn(header(upstream, "docker-content-digest") ?? route.params.reference ?? route.params.digest);
  switch (route.endpoint.id) {
    case "manifest.put": {
      const body = teeSmallBody(req);
      return (upstream) => {
        const digest = digestHeader(upstream);
        if (status(upstream) >= 400 || !digest) return { kind: "refused", status: status(upstream) };
        const manifest = body();
        return {
          kind: "manifest-stored",
          digest,
          mediaType: String(req.headers["content-type"] ?? "").split(";")[0] || (manifest?.mediaType ?? ""),
          size: manifest?.totalSize ?? 0,
        };
      };
    }
    case "manifest.get":
      return (upstream) => {
        const digest = digestHeader(upstream);
        if (status(upstream) !== 200 || !digest) return { kind: "refused", status: status(upstream) };
        return {
          kind: "manifest-served",
          digest,
          mediaType: header(upstream, "content-type") ?? "",
          size: Number(header(upstream, "content-length") ?? 0),
        };
      };
    case "manifest.delete":
    case "blob.delete":
      return (upstream) =>
        status(upstream) < 400 ? { kind: "deleted" } : { kind: "refused", status: status(upstream) };
    case "upload.start": {
      const mount = query.get("mount");
      const digest = digestIn(mount ?? undefined);
      if (!digest) return () => undefined;
      return (upstream) => (status(upstream) === 201 ? { kind: "mounted", digest } : undefined);
    }
    default:
      return () => undefined;
  }
}

function digestIn(value: string | undefined): Digest | undefined {
  if (!value || !looksLikeDigest(value)) return undefined;
  try {
    return parseDigest(value);
  } catch {
    return undefined;
  }
}

function header(res: IncomingMessage, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Keeps a copy of a manifest body as it streams past (bounded: manifests are at most 4 MiB). */
function teeSmallBody(req: IncomingMessage): () => ReturnType<typeof parseManifest> | undefined {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size <= maxManifestBytes) chunks.push(chunk);
  });
  return () => {
    if (size > maxManifestBytes) return undefined;
    try {
      return parseManifest(Buffer.concat(chunks), req.headers["content-type"]);
    } catch {
      return undefined;
    }
  };
}
