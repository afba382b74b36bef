import { httpsRequest } from "./https-client.js";

/** A bearer token from the gateway's `/token` for `scopes`, as podman or skopeo would get one. */
export async function fetchToken(
  base: string,
  ca: string,
  user: string,
  password: string,
  scopes: string[],
): Promise<string> {
  const query = new URLSearchParams({ service: "portcullis" });
  for (const scope of scopes) query.append("scope", scope);
  const res = await httpsRequest(`${base}/token?${query}`, {
    ca,
    headers: { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` },
  });
  if (res.status !== 200) throw new Error(`/token answered ${res.status}: ${res.body.toString()}`);
  return (JSON.parse(res.body.toString()) as { token: string }).token;
}

/** `GET /v2/REPOSITORY/tags/list` with a pull token for `user`: the status and the parsed body. */
export async function tagsListAs(
  serve: { url: string; caPem: string },
  user: string,
  password: string,
  repository: string,
): Promise<{ status: number; body: unknown }> {
  const token = await fetchToken(serve.url, serve.caPem, user, password, [`repository:${repository}:pull`]);
  const res = await httpsRequest(`${serve.url}/v2/${repository}/tags/list`, {
    ca: serve.caPem,
    headers: { Authorization: `Bearer ${token}` },
  });
  return { status: res.status, body: JSON.parse(res.body.toString("utf8")) as unknown };
}
