import type { ServerResponse } from "node:http";

/** An answer from `/token` in OAuth 2's error form (RFC 6749 §5.2). Thrown by the endpoint, rendered once. */
export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly code:
      | "invalid_request"
      | "invalid_grant"
      | "invalid_client"
      | "unsupported_grant_type"
      | "temporarily_unavailable"
      | "slow_down",
    readonly description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
    this.name = "OAuthError";
  }
}

export const badCredentials = () =>
  new OAuthError(401, "invalid_grant", "invalid username or password", {
    "WWW-Authenticate": 'Basic realm="portcullis"',
  });

export function sendOAuthError(res: ServerResponse, error: OAuthError): void {
  const body = Buffer.from(JSON.stringify({ error: error.code, error_description: error.description }));
  res.writeHead(error.status, {
    "Content-Type": "application/json",
    "Content-Length": body.length,
    "Cache-Control": "no-store",
    ...error.headers,
  });
  res.end(body);
}
