import type { IncomingMessage } from "node:http";

/** `Authorization: Basic …` → user and password; undefined when absent or malformed. */
export function basicCredentials(req: IncomingMessage): { username: string; password: string } | undefined {
  const header = req.headers.authorization;
  if (!header || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (!header || !/^bearer /i.test(header)) return undefined;
  return header.slice(7).trim() || undefined;
}
