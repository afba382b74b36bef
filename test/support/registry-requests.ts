import { createHash } from "node:crypto";

/** Small typed wrappers over the OCI API for tests that talk to a registry with fetch. */
export function sha256(content: Buffer | string): string {
  return `sha256:${createHash("sha256").update(content).digest("hex")}`;
}

export interface PushedBlob {
  digest: string;
  size: number;
}

export async function pushBlob(base: string, name: string, content: Buffer | string): Promise<PushedBlob> {
  const digest = sha256(content);
  const res = await fetch(`${base}/v2/${name}/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: content,
  });
  if (res.status !== 201) throw new Error(`blob push to ${name} answered ${res.status}: ${await res.text()}`);
  return { digest, size: Buffer.byteLength(content) };
}

export interface PushedManifest {
  digest: string;
  content: string;
  res: Response;
}

/** Pushes a config and one layer, then an OCI image manifest referencing them, tagged `reference`. */
export async function pushImage(
  base: string,
  name: string,
  reference: string,
  extra: Record<string, unknown> = {},
): Promise<PushedManifest> {
  const config = await pushBlob(base, name, JSON.stringify({ architecture: "amd64", os: "linux", name, reference }));
  const layer = await pushBlob(base, name, `layer of ${name}:${reference} ${Math.random()}`);
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...layer }],
    ...extra,
  };
  return putManifest(base, name, reference, JSON.stringify(manifest), manifest.mediaType);
}

export async function putManifest(
  base: string,
  name: string,
  reference: string,
  content: string,
  contentType: string,
): Promise<PushedManifest> {
  const res = await fetch(`${base}/v2/${name}/manifests/${reference}`, {
    method: "PUT",
    headers: { "Content-Type": contentType },
    body: content,
  });
  if (res.status !== 201)
    throw new Error(`manifest push ${name}:${reference} answered ${res.status}: ${await res.text()}`);
  return { digest: sha256(content), content, res };
}

export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: { code: string }[] };
  return body.errors?.[0]?.code;
}
