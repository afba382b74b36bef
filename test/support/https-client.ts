import { request } from "node:https";
import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";

export interface HttpsResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpsRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer | Readable;
  /** The CA to trust; the request fails on any certificate it did not issue. */
  ca: string;
  /** TLS server name to check the certificate against, when the URL's host is not it. */
  servername?: string;
  /** Source address, e.g. 127.0.0.2 to be another client on loopback. */
  localAddress?: string;
}

/** One HTTPS request with certificate verification against `ca`, answered with the whole body. */
export function httpsRequest(url: string, options: HttpsRequestOptions): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? "GET",
        headers: options.headers,
        ca: options.ca,
        ...(options.servername ? { servername: options.servername } : {}),
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    const body = options.body;
    if (body === undefined || typeof body === "string" || Buffer.isBuffer(body)) req.end(body);
    else body.pipe(req);
  });
}
