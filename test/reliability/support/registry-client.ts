import { createHash } from "node:crypto";
import { Agent, request } from "node:https";
import type { IncomingHttpHeaders } from "node:http";

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RegistryClient {
  /** One request with a token for the repository (pull, push and delete) when `repo` is given. */
  send(
    method: string,
    path: string,
    init?: { repo?: string; headers?: Record<string, string>; body?: Buffer | string },
  ): Promise<Answer>;
  token(scopes: string[]): Promise<Answer>;
  pushBlob(repo: string, content: Buffer): Promise<string>;
  /** POST, then PATCH chunks of `chunkBytes` with Content-Range, then PUT with the digest. */
  pushBlobInChunks(repo: string, content: Buffer, chunkBytes: number): Promise<string>;
  /** A config and `layers` layers of random bytes, then the manifest under `tag`; the manifest's digest. */
  pushImage(repo: string, tag: string, layers: Buffer[]): Promise<PushedImage>;
  /** Requests sent so far, tokens included. */
  requests(): number;
  close(): void;
}

export interface PushedImage {
  repo: string;
  tag: string;
  digest: string;
  manifest: Buffer;
  blobs: Map<string, Buffer>;
}

export const sha256 = (content: Buffer | string) => `sha256:${createHash("sha256").update(content).digest("hex")}`;

/** A small OCI client over HTTPS that trusts `ca`, logs in with Basic credentials and keeps tokens per repository. */
export function createRegistryClient(options: {
  url: string;
  ca: string;
  user: string;
  password: string;
  service?: string;
}): RegistryClient {
  const agent = new Agent({ keepAlive: true, maxSockets: 16, ca: options.ca });
  // A server killed while a kept-alive socket sits idle resets it: the next request on it finds that out,
  // and the reset itself is no failure of anything (the crash tests kill servers on purpose).
  const guarded = new WeakSet<object>();
  agent.on("free", (socket: NodeJS.EventEmitter) => {
    if (guarded.has(socket)) return;
    guarded.add(socket);
    socket.on("error", () => undefined);
  });
  const tokens = new Map<string, string>();
  let service = options.service;
  let sent = 0;

  function raw(method: string, path: string, headers: Record<string, string>, body?: Buffer | string): Promise<Answer> {
    sent += 1;
    return new Promise((resolve, reject) => {
      const req = request(`${options.url}${path}`, { method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on("error", reject);
      req.end(body);
    });
  }

  const basic = () => `Basic ${Buffer.from(`${options.user}:${options.password}`).toString("base64")}`;

  async function token(scopes: string[]): Promise<Answer> {
    if (!service) {
      const challenge = String((await raw("GET", "/v2/", {})).headers["www-authenticate"] ?? "");
      service = /service="([^"]+)"/.exec(challenge)?.[1] ?? "";
    }
    const query = new URLSearchParams({ service });
    for (const scope of scopes) query.append("scope", scope);
    return raw("GET", `/token?${query}`, { Authorization: basic() });
  }

  async function bearer(repo: string): Promise<string> {
    const known = tokens.get(repo);
    if (known) return known;
    const answer = await token([`repository:${repo}:pull,push,delete`]);
    if (answer.status !== 200) throw new Error(`token for ${repo}: ${answer.status} ${answer.body.toString()}`);
    const value = (JSON.parse(answer.body.toString()) as { token: string }).token;
    tokens.set(repo, value);
    return value;
  }

  const client: RegistryClient = {
    async send(method, path, init = {}) {
      const headers = { ...init.headers };
      // Without a user, against a gateway with no auth: no token at all.
      if (init.repo && options.user) headers.Authorization = `Bearer ${await bearer(init.repo)}`;
      return raw(method, path, headers, init.body);
    },
    token,
    async pushBlob(repo, content) {
      const digest = sha256(content);
      const answer = await client.send("POST", `/v2/${repo}/blobs/uploads/?digest=${digest}`, {
        repo,
        headers: { "Content-Type": "application/octet-stream", "Content-Length": String(content.length) },
        body: content,
      });
      if (answer.status !== 201) throw new Error(`blob push answered ${answer.status}: ${answer.body.toString()}`);
      return digest;
    },
    async pushBlobInChunks(repo, content, chunkBytes) {
      const digest = sha256(content);
      const start = await client.send("POST", `/v2/${repo}/blobs/uploads/`, { repo });
      if (start.status !== 202) throw new Error(`upload start answered ${start.status}`);
      let location = new URL(String(start.headers.location), options.url);
      for (let offset = 0; offset < content.length; offset += chunkBytes) {
        const chunk = content.subarray(offset, offset + chunkBytes);
        const answer = await client.send("PATCH", `${location.pathname}${location.search}`, {
          repo,
          headers: {
            "Content-Type": "application/octet-stream",
            "Content-Range": `${offset}-${offset + chunk.length - 1}`,
            "Content-Length": String(chunk.length),
          },
          body: chunk,
        });
        if (answer.status !== 202) throw new Error(`chunk answered ${answer.status}: ${answer.body.toString()}`);
        location = new URL(String(answer.headers.location), options.url);
      }
      const query = new URLSearchParams(location.search);
      query.set("digest", digest);
      const done = await client.send("PUT", `${location.pathname}?${query}`, { repo });
      if (done.status !== 201) throw new Error(`upload completion answered ${done.status}: ${done.body.toString()}`);
      return digest;
    },
    async pushImage(repo, tag, layers) {
      const blobs = new Map<string, Buffer>();
      const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", repo, tag, at: Date.now() }));
      const descriptors = [];
      for (const [index, layer] of layers.entries()) {
        const digest =
          index % 2 === 1 ? await client.pushBlobInChunks(repo, layer, 64 * 1024) : await client.pushBlob(repo, layer);
        blobs.set(digest, layer);
        descriptors.push({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest, size: layer.length });
      }
      const configDigest = await client.pushBlob(repo, config);
      blobs.set(configDigest, config);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
          layers: descriptors,
        }),
      );
      const answer = await client.send("PUT", `/v2/${repo}/manifests/${tag}`, {
        repo,
        headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
        body: manifest,
      });
      if (answer.status !== 201) throw new Error(`manifest push answered ${answer.status}: ${answer.body.toString()}`);
      return { repo, tag, digest: sha256(manifest), manifest, blobs };
    },
    requests: () => sent,
    close: () => agent.destroy(),
  };
  return client;
}
