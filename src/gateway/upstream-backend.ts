import type { IncomingMessage } from "node:http";
import { looksLikeDigest, parseDigest, type Digest } from "../registry/digest.js";
import { maxManifestBytes, parseManifest } from "../registry/manifest.js";
import type { RegistryOutcome } from "../registry/outcome.js";
import type { Logger } from "../log.js";
import type { UpstreamClient } from "../upstream/client.js";
import { UpstreamError } from "../upstream/errors.js";
import type { RegistryBackend, ServeOptions } from "./backend.js";
import { createCatalogView, upstreamRepositories } from "./catalog-view.js";
import type { ForwardedResolver } from "./forwarded.js";
import { createRegistryProxy } from "./proxy.js";
import { sendRegistryError } from "./responses.js";
import { upstreamScope } from "./upstream-scope.js";
import type { V2Request } from "./v2-request.js";

/**
 * Another V2 registry, streamed to through http-proxy with the gateway's own account on it (Basic, or a
 * token Portcullis fetched for the request's scope): clients sign in to Portcullis, never to the upstream.
 * What a request did is read from the upstream's answer (its status and headers, and the manifest body as
 * it streamed past), before the answer is passed on.
 */
export function upstreamBackend(deps: {
  upstream: UpstreamClient;
  forwarded: ForwardedResolver;
  logger: Logger;
}): RegistryBackend {
  const { upstream, logger } = deps;
  const proxy = createRegistryProxy(deps);
  const catalog = createCatalogView({ upstream });

  async function forward(request: V2Request, options: ServeOptions): Promise<void> {
    const { req, res } = request;
    const scope = upstreamScope(request);
    const authorization = await upstream.authorization(scope);
    const outcomeOf = options.observe ? outcomeReader(request) : () => undefined;
    proxy(req, res, {
      authorization,
      observe: (answer) => {
        if (answer.statusCode === 401) {
          upstream.refused(scope, authorization);
          const refusal = refusalFor(answer, upstream.name, scope, logger);
          options.observe?.({ kind: "refused", status: refusal.status });
          if (!req.complete) res.setHeader("Connection", "close");
          sendRegistryError(res, refusal.status, refusal.code, refusal.message);
          return;
        }
        const outcome = outcomeOf(answer);
        if (outcome) options.observe?.(outcome);
      },
    });
  }

  return {
    serve(request, options = {}) {
      const { req, res, route } = request;
      const answered =
        route.endpoint.id === "catalog" && options.mayList
          ? catalog(req, res, options.mayList)
          : forward(request, options);
      answered.catch((error: unknown) => {
        if (error instanceof UpstreamError) logger.warn({ reason: error.message }, "upstream could not be asked");
        else logger.warn({ err: error }, "upstream request failed");
        if (res.headersSent) return res.destroy();
        if (!req.complete) res.setHeader("Connection", "close");
        sendRegistryError(res, 503, "UNAVAILABLE", unavailableMessage(error, upstream.name));
      });
    },
    repositories: () => upstreamRepositories(upstream),
  };
}

function unavailableMessage(error: unknown, upstream: string): string {
  if (error instanceof UpstreamError && error.failure === "credentials")
    return `the registry behind the gateway (upstream "${upstream}") refused the gateway's account`;
  return `the registry behind the gateway (upstream "${upstream}") is not reachable; try again shortly`;
}

/**
 * The upstream refused the gateway's own account: its challenge would send the client to the upstream's token
 * service (with its Portcullis password), so it never reaches the client. Too little access for the scope is
 * a refusal; anything else (a token revoked early, which is forgotten) is worth trying again.
 */
function refusalFor(
  answer: IncomingMessage,
  upstream: string,
  scope: string,
  logger: Logger,
): { status: number; code: string; message: string } {
  const challenge = String(answer.headers["www-authenticate"] ?? "");
  const insufficient = /error="insufficient_scope"/.test(challenge);
  logger.warn(
    { upstream, scope, error: /error="([^"]*)"/.exec(challenge)?.[1] },
    `upstream "${upstream}" refused the gateway's account`,
  );
  return insufficient
    ? { status: 403, code: "DENIED", message: `the gateway's account on upstream "${upstream}" may not ${scope}` }
    : { status: 503, code: "UNAVAILABLE", message: `upstream "${upstream}" refused the gateway's account; try again` };
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
