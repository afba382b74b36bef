import http from "node:http";
import https from "node:https";
import { pipeline } from "node:stream/promises";
import { tail } from "./tail.mjs";

const IDLE_TIMEOUT_MS = 120_000;

/**
 * One request with an optional streamed body, over HTTP or HTTPS (with `agent`, by default none). The response
 * body is returned only for small responses (error reporting); callers that stream the body pass onResponse
 * instead. `tls` is the protocol and cipher an HTTPS connection negotiated.
 */
export function request(method, url, { agent = false, headers = {}, body, onResponse } = {}) {
  return new Promise((resolve, reject) => {
    const send = url.startsWith("https:") ? https.request : http.request;
    const req = send(url, { method, headers, agent });
    const record = { method, url, requestHeaders: headers };
    let tls = null;
    req.on("socket", (socket) =>
      socket.once("secureConnect", () => {
        tls = { protocol: socket.getProtocol(), cipher: socket.getCipher()?.name ?? null };
      }),
    );
    req.on("error", (err) => reject(Object.assign(err, { request: record })));
    req.on("response", (res) => {
      if (onResponse && res.statusCode >= 200 && res.statusCode < 300) {
        onResponse(res).then(
          (value) => resolve({ status: res.statusCode, headers: res.headers, value, tls }),
          (err) => reject(Object.assign(err, { request: record })),
        );
        return;
      }
      const parts = [];
      let length = 0;
      res.on("data", (chunk) => {
        if (length < 64 * 1024) parts.push(chunk);
        length += chunk.length;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString("utf8"), tls }),
      );
      res.on("error", reject);
    });
    req.setTimeout(IDLE_TIMEOUT_MS, () =>
      req.destroy(new Error(`${method} ${url}: no progress for ${IDLE_TIMEOUT_MS / 1000} s`)),
    );
    if (body) {
      // A server that answers early (an error status) may reset the connection under the body;
      // give its response a moment to arrive so the report shows it rather than EPIPE.
      let raw = "";
      req.on("socket", (socket) =>
        socket.on("data", (chunk) => {
          if (raw.length < 8192) raw += chunk.toString("latin1");
        }),
      );
      pipeline(body, req).catch((err) => {
        setTimeout(() => {
          if (raw) err.message += `\nthe server had sent (raw, before the connection failed):\n${tail(raw, 8192)}`;
          else err.message += "\nnothing was received from the server before the connection failed";
          reject(Object.assign(err, { request: record }));
        }, 1000);
      });
    } else {
      req.end();
    }
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
