import type { UpstreamClient } from "./client.js";

/**
 * The upstream answers `GET /v2/` to the gateway's own account: reachable, its certificate trusted, the
 * credentials (or an anonymous token) accepted. Rejects with a message that says which of them failed.
 */
export async function checkUpstream(upstream: UpstreamClient): Promise<void> {
  const res = await upstream.request({ method: "GET", path: "/v2/", scope: "" });
  res.resume();
  const status = res.statusCode ?? 0;
  if (status === 401 || status === 403)
    throw new Error(`upstream "${upstream.name}" refused the gateway's account (${status}) on /v2/`);
  if (status >= 500) throw new Error(`upstream "${upstream.name}" answers ${status} on /v2/`);
}
