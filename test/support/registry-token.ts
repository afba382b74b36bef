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
