import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { pipeline } from "node:stream/promises";
import { transportError, UpstreamError } from "./errors.js";

export interface TransportOptions {
  /** Names the upstream in every error. */
  upstream: string;
  /** PEM trusted instead of the system's CAs. */
  caPem?: string;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

export interface TransportRequest {
  method: string;
  headers: OutgoingHttpHeaders;
  body?: NodeJS.ReadableStream;
  signal?: AbortSignal;
}

export interface Transport {
  /** One HTTP exchange; resolves at the answer's headers, rejects with an UpstreamError. */
  send(target: URL, request: TransportRequest): Promise<IncomingMessage>;
  /** The kept-alive connections (and trust) for `protocol`, for a proxy that sends on its own. */
  agent(protocol: string): HttpAgent;
  close(): void;
}

/**
 * HTTP(S) to one upstream (and its token service) over kept-alive connections, with its CA and its time
 * bounds: connecting (TLS included) and the first byte after the request is sent each get `connectTimeoutMs`;
 * a connection silent for `idleTimeoutMs` at any point, mid-body too, is given up.
 */
export function createTransport(options: TransportOptions): Transport {
  const agents = {
    "http:": new HttpAgent({ keepAlive: true, timeout: options.idleTimeoutMs }),
    "https:": new HttpsAgent({
      keepAlive: true,
      timeout: options.idleTimeoutMs,
      ...(options.caPem !== undefined ? { ca: options.caPem } : {}),
    }),
  };

  function exchange(target: URL, request: TransportRequest, retry = true): Promise<IncomingMessage> {
    const secure = target.protocol === "https:";
    const where = target.origin;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let connected = false;
      let sent = false;
      let answered = false;
      const bound = (what: string) => {
        clearTimeout(timer);
        timer = setTimeout(
          () =>
            req.destroy(
              new UpstreamError(options.upstream, "timeout", `${where} ${what} within ${options.connectTimeoutMs} ms`),
            ),
          options.connectTimeoutMs,
        );
      };
      const send = secure ? httpsRequest : httpRequest;
      const req = send(
        target,
        {
          method: request.method,
          headers: request.headers,
          agent: agents[secure ? "https:" : "http:"],
          ...(request.signal ? { signal: request.signal } : {}),
        },
        (res) => {
          answered = true;
          clearTimeout(timer);
          resolve(res);
        },
      );
      bound("did not accept a connection");
      req.on("socket", (socket) => {
        const onConnect = () => {
          connected = true;
          if (sent) bound("did not answer");
          else clearTimeout(timer);
        };
        if (req.reusedSocket) onConnect();
        else socket.once(secure ? "secureConnect" : "connect", onConnect);
      });
      req.on("finish", () => {
        sent = true;
        if (connected && !answered) bound("did not answer");
      });
      req.setTimeout(options.idleTimeoutMs, () =>
        req.destroy(
          new UpstreamError(options.upstream, "timeout", `${where} sent nothing for ${options.idleTimeoutMs} ms`),
        ),
      );
      req.on("error", (error) => {
        clearTimeout(timer);
        if (answered) return;
        // A kept-alive connection the upstream closed just as it was reused: a request without a body is sent
        // once more on a new one (what Node's documentation advises for keep-alive agents).
        const reset = (error as NodeJS.ErrnoException).code === "ECONNRESET";
        if (retry && reset && req.reusedSocket && !request.body) resolve(exchange(target, request, false));
        else reject(transportError(options.upstream, where, error));
      });
      if (request.body) pipeline(request.body, req).catch(() => undefined);
      else req.end();
    });
  }

  return {
    send: (target, request) => exchange(target, request),
    agent: (protocol) => (protocol === "https:" ? agents["https:"] : agents["http:"]),
    close() {
      agents["http:"].destroy();
      agents["https:"].destroy();
    },
  };
}
