import type { ServerResponse } from "node:http";

export function sendRegistryError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
  detail?: unknown,
): void {
  const body = Buffer.from(
    JSON.stringify({ errors: [{ code, message, ...(detail === undefined ? {} : { detail }) }] }),
  );
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": body.length,
    "Docker-Distribution-API-Version": "registry/2.0",
    ...headers,
  });
  res.end(body);
}

export function sendText(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): void {
  const content = typeof body === "string" ? Buffer.from(body) : body;
  res.writeHead(status, { "Content-Type": contentType, "Content-Length": content.length, ...headers });
  res.end(res.req.method === "HEAD" ? undefined : content);
}
