import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import type { ImageSummary } from "../registry/inventory.js";
import { mediaTypes } from "../registry/media-types.js";
import type { ImageReference } from "./image-reference.js";
import { findCredentials, type Credentials } from "./registry-credentials.js";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const manifestAccept = [
  mediaTypes.ociIndex,
  mediaTypes.ociManifest,
  mediaTypes.dockerManifestList,
  mediaTypes.dockerManifest,
].join(", ");

/** The registry API's error, as the server sent it (`DENIED: requested access to the resource is denied`). */
export class RemoteRegistryError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = "RemoteRegistryError";
  }
}

/** `ls` and `rm` through a running server's registry API, with a token for exactly the scope each call needs. */
export async function createRemoteRegistry(options: { server: string; ca: string | undefined; certs: string }) {
  const base = new URL(options.server);
  const caPath = options.ca ?? (existsSync(join(options.certs, "ca.crt")) ? join(options.certs, "ca.crt") : undefined);
  const ca = caPath ? await readFile(caPath, "utf8") : undefined;
  const credentials = findCredentials(base.host);
  const tokens = new Map<string, string>();

  function send(url: URL, method: string, headers: Record<string, string>, body?: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers, ...(ca ? { ca } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`no answer from ${url.origin}`)));
      req.on("error", reject);
      req.end(body);
    });
  }

  async function token(scope: string, challenge: string): Promise<string> {
    const cached = tokens.get(scope);
    if (cached) return cached;
    const realm = /realm="([^"]+)"/.exec(challenge)?.[1];
    const service = /service="([^"]+)"/.exec(challenge)?.[1];
    if (!realm) throw new Error(`${base.origin} sent no token realm in its challenge`);
    const url = new URL(realm);
    const answer = await fetchToken(url, service, scope, credentials);
    const parsed = JSON.parse(answer.body.toString("utf8") || "{}") as { token?: string; access_token?: string };
    const value = parsed.token ?? parsed.access_token;
    if (answer.status !== 200 || !value) throw errorOf(answer, `could not get a token for ${scope}`);
    tokens.set(scope, value);
    return value;
  }

  function fetchToken(url: URL, service: string | undefined, scope: string, who: Credentials | undefined) {
    if (who && "identityToken" in who) {
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: who.identityToken,
        client_id: "portcullis-cli",
        scope,
        ...(service ? { service } : {}),
      }).toString();
      return send(url, "POST", { "Content-Type": "application/x-www-form-urlencoded" }, form);
    }
    url.searchParams.set("scope", scope);
    if (service) url.searchParams.set("service", service);
    const headers: Record<string, string> = who
      ? { Authorization: `Basic ${Buffer.from(`${who.username}:${who.password}`).toString("base64")}` }
      : {};
    return send(url, "GET", headers);
  }

  async function call(method: string, path: string, scope: string, headers: Record<string, string> = {}) {
    const url = new URL(path, base);
    let answer = await send(url, method, headers);
    if (answer.status === 401) {
      const challenge = String(answer.headers["www-authenticate"] ?? "");
      answer = await send(url, method, { ...headers, Authorization: `Bearer ${await token(scope, challenge)}` });
      // A token for exactly this scope still refused: the policy left the action out of the grant.
      if (answer.status === 401) {
        throw new RemoteRegistryError(403, "DENIED", `requested access to the resource is denied (${scope})`);
      }
    }
    return answer;
  }

  const json = <T>(answer: Answer) => JSON.parse(answer.body.toString("utf8")) as T;
  const repoPath = (name: string) => `/v2/${name}`;

  async function describe(repository: string, tag: string): Promise<ImageSummary | undefined> {
    const scope = `repository:${repository}:pull`;
    const got = await call("GET", `${repoPath(repository)}/manifests/${tag}`, scope, { Accept: manifestAccept });
    if (got.status === 404) return undefined;
    if (got.status !== 200) throw errorOf(got, `reading ${repository}:${tag}`);
    const digest = String(got.headers["docker-content-digest"] ?? "");
    const manifest = json<Record<string, unknown>>(got);
    const counted = new Map<string, number>([[digest, got.body.length]]);
    const platforms: string[] = [];
    const visit = async (m: Record<string, unknown>) => {
      const children = Array.isArray(m.manifests) ? (m.manifests as Record<string, unknown>[]) : undefined;
      if (children) {
        for (const child of children) {
          const childDigest = String(child.digest);
          if (counted.has(childDigest)) continue;
          counted.set(childDigest, Number(child.size));
          const answer = await call("GET", `${repoPath(repository)}/manifests/${childDigest}`, scope, {
            Accept: manifestAccept,
          });
          if (answer.status === 200) await visit(json(answer));
        }
        return;
      }
      const config = m.config as { digest?: string; size?: number } | undefined;
      const layers = Array.isArray(m.layers) ? (m.layers as { digest: string; size: number }[]) : [];
      for (const d of [...(config ? [config] : []), ...layers]) {
        if (d.digest) counted.set(d.digest, Number(d.size));
      }
      if (config?.digest && (config.size ?? 0) < 1024 * 1024) {
        const blob = await call("GET", `${repoPath(repository)}/blobs/${config.digest}`, scope);
        try {
          const c = json<{ os?: string; architecture?: string; variant?: string }>(blob);
          if (c.os && c.architecture) {
            const p = `${c.os}/${c.architecture}${c.variant ? `/${c.variant}` : ""}`;
            if (!platforms.includes(p)) platforms.push(p);
          }
        } catch {
          // an artifact's config that is not JSON names no platform
        }
      }
    };
    await visit(manifest);
    const size = [...counted.values()].reduce((a, b) => a + b, 0);
    const mediaType = typeof manifest.mediaType === "string" ? manifest.mediaType : String(got.headers["content-type"]);
    return { repository, tag, digest, mediaType, size, platforms };
  }

  return {
    async repositories(): Promise<string[]> {
      const names: string[] = [];
      let path: string | undefined = "/v2/_catalog?n=1000";
      while (path) {
        const answer = await call("GET", path, "registry:catalog:*");
        if (answer.status !== 200) throw errorOf(answer, "listing repositories");
        names.push(...(json<{ repositories?: string[] }>(answer).repositories ?? []));
        path = nextLink(answer);
      }
      return names.sort();
    },

    async images(repository: string): Promise<ImageSummary[]> {
      const tags: string[] = [];
      let path: string | undefined = `${repoPath(repository)}/tags/list?n=1000`;
      while (path) {
        const answer = await call("GET", path, `repository:${repository}:pull`);
        if (answer.status !== 200) throw errorOf(answer, `listing the tags of ${repository}`);
        tags.push(...(json<{ tags?: string[] | null }>(answer).tags ?? []));
        path = nextLink(answer);
      }
      const images: ImageSummary[] = [];
      for (const tag of tags.sort()) {
        const image = await describe(repository, tag);
        if (image) images.push(image);
      }
      return images;
    },

    /** Deletes a tag, or a manifest with every tag on it; answers what was removed. */
    async remove(reference: ImageReference, allTags: boolean): Promise<string> {
      const { repository } = reference;
      const scope = `repository:${repository}:pull,delete`;
      let target = "digest" in reference ? reference.digest.text : reference.tag;
      if ("tag" in reference && allTags) {
        const head = await call("HEAD", `${repoPath(repository)}/manifests/${reference.tag}`, scope, {
          Accept: manifestAccept,
        });
        if (head.status !== 200) throw errorOf(head, `resolving ${repository}:${reference.tag}`);
        target = String(head.headers["docker-content-digest"] ?? "");
      }
      const answer = await call("DELETE", `${repoPath(repository)}/manifests/${target}`, scope);
      if (answer.status !== 202 && answer.status !== 200) throw errorOf(answer, `deleting ${repository}:${target}`);
      return target;
    },
  };
}

function nextLink(answer: Answer): string | undefined {
  const link = answer.headers.link;
  const text = Array.isArray(link) ? link[0] : link;
  return text ? /<([^>]+)>/.exec(text)?.[1] : undefined;
}

function errorOf(answer: Answer, what: string): RemoteRegistryError {
  try {
    const parsed = JSON.parse(answer.body.toString("utf8")) as { errors?: { code: string; message: string }[] };
    const first = parsed.errors?.[0];
    if (first) return new RemoteRegistryError(answer.status, first.code, `${first.message} (${what})`);
  } catch {
    // not the registry's JSON error body
  }
  return new RemoteRegistryError(
    answer.status,
    answer.status === 403 ? "DENIED" : "UNKNOWN",
    `HTTP ${answer.status} (${what})`,
  );
}
