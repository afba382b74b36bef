import { request } from "node:https";

/** One HTTPS GET answered with JSON, trusting `ca` when given (the system's store otherwise). */
export function requestJson(
  url: URL,
  options: { ca?: string; headers?: Record<string, string>; timeoutMs?: number },
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: options.headers, ...(options.ca ? { ca: options.ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on("error", reject);
    });
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error(`no answer from ${url.origin}`)));
    req.on("error", reject);
    req.end();
  });
}
