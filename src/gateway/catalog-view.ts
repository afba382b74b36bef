import type { IncomingMessage, ServerResponse } from "node:http";
import { paginate } from "../http/pagination.js";
import { splitUrl } from "../http/request-url.js";
import type { UpstreamClient } from "../upstream/client.js";
import { RegistryError } from "../registry/errors.js";
import { readSmallBody } from "../registry/http.js";
import { sendRegistryError } from "./responses.js";

const upstreamPage = 1000;
/** A page of 1000 names of at most 255 characters each. */
const maxPageBytes = 1000 * 260 + 1024;

/** The upstream's whole catalog, walked page by page, sorted. */
export async function upstreamRepositories(upstream: UpstreamClient): Promise<string[]> {
  const names: string[] = [];
  let last: string | undefined;
  for (;;) {
    const query = new URLSearchParams({ n: String(upstreamPage), ...(last ? { last } : {}) });
    const res = await upstream.request({ method: "GET", path: `/v2/_catalog?${query}`, scope: "registry:catalog:*" });
    if (res.statusCode !== 200) {
      res.resume();
      throw new Error(`upstream "${upstream.name}" catalog answered ${res.statusCode}`);
    }
    const body = await readSmallBody(
      res,
      maxPageBytes,
      () => new RegistryError("UNAVAILABLE", "catalog page too large"),
    );
    const page = (JSON.parse(body.toString("utf8")) as { repositories?: string[] }).repositories ?? [];
    names.push(...page);
    if (!res.headers.link || page.length === 0) return names.sort();
    last = page[page.length - 1];
  }
}

/**
 * `/v2/_catalog` as the caller may see it: the upstream's whole list cut down to the repositories the
 * caller may pull, then paginated again for the caller with `n`, `last` and `Link`.
 */
export function createCatalogView(deps: { upstream: UpstreamClient }) {
  return async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    mayPull: (repository: string) => boolean,
  ): Promise<void> {
    const { path, query } = splitUrl(req.url ?? "/");
    let visible = (await upstreamRepositories(deps.upstream)).filter(mayPull);
    let result;
    try {
      result = paginate(visible, query, path, (n) => new Error(n));
    } catch {
      sendRegistryError(res, 400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested");
      return;
    }
    visible = result.page;
    const body = Buffer.from(JSON.stringify({ repositories: visible }));
    res.writeHead(200, {
      "Content-Type": "application/json",
      "Content-Length": body.length,
      "Docker-Distribution-API-Version": "registry/2.0",
      ...result.headers,
    });
    res.end(req.method === "HEAD" ? undefined : body);
  };
}
