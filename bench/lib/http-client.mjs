import http from "node:http";
import https from "node:https";
import { tail } from "./tail.mjs";

const IDLE_TIMEOUT_MS = 120_000;

/** One request with no body over HTTP or HTTPS (with `agent`, by default none); resolves with its small body. */
export function request(method, url, { agent = false, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const send = url.startsWith("https:") ? https.request : http.request;
    const req = send(url, { method, headers, agent });
    const record = { method, url, requestHeaders: headers };
    req.on("error", (err) => reject(Object.assign(err, { request: record })));
    req.on("response", (res) => {
      const parts = [];
      let length = 0;
      res.on("data", (chunk) => {
        if (length < 64 * 1024) parts.push(chunk);
        length += chunk.length;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.setTimeout(IDLE_TIMEOUT_MS, () =>
      req.destroy(new Error(`${method} ${url}: no progress for ${IDLE_TIMEOUT_MS / 1000} s`)),
    );
    req.end();
  });
}

export function expectStatus(res, expected, method, url, requestHeaders) {
  if (res.status === expected) return;
  const headers = Object.entries(res.headers)
    .map(([k, v]) => `  ${k}: ${v}`)
    .join("\n");
  const reqHeaders = Object.entries(requestHeaders)
    .map(([k, v]) => `  ${k}: ${v}`)
    .join("\n");
  throw new Error(
    `${method} ${url} → ${res.status}, expected ${expected}\n` +
      `request headers:\n${reqHeaders || "  (none)"}\n` +
      `response headers:\n${headers}\nresponse body:\n${tail(res.body ?? "", 2000)}`,
  );
}
