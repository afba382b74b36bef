import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistryUnderTest, type RegistryUnderTest } from "../support/registry-under-test.js";
import { errorCode, pushBlob, pushImage, putManifest, sha256 } from "../support/registry-requests.js";

let registry: RegistryUnderTest;
beforeAll(async () => {
  registry = await startRegistryUnderTest();
});
afterAll(async () => {
  await registry.stop();
});

const emptyConfig = {
  mediaType: "application/vnd.oci.empty.v1+json",
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
};

describe("manifests", () => {
  it("serves a pushed manifest by tag and by digest with its media type and digest", async () => {
    const { digest, content } = await pushImage(registry.url, "m/app", "v1");
    for (const reference of ["v1", digest]) {
      const res = await fetch(`${registry.url}/v2/m/app/manifests/${reference}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/vnd.oci.image.manifest.v1+json");
      expect(res.headers.get("docker-content-digest")).toBe(digest);
      expect(await res.text()).toBe(content);
    }
    const head = await fetch(`${registry.url}/v2/m/app/manifests/v1`, { method: "HEAD" });
    expect(head.headers.get("content-length")).toBe(String(Buffer.byteLength(content)));
  });

  it("stores Docker schema 2 manifests and manifest lists", async () => {
    const config = await pushBlob(registry.url, "m/docker", '{"os":"linux"}');
    const layer = await pushBlob(registry.url, "m/docker", "docker layer");
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.docker.distribution.manifest.v2+json",
      config: { mediaType: "application/vnd.docker.container.image.v1+json", ...config },
      layers: [{ mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", ...layer }],
    });
    const image = await putManifest(
      registry.url,
      "m/docker",
      "amd64",
      manifest,
      "application/vnd.docker.distribution.manifest.v2+json",
    );
    const list = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.docker.distribution.manifest.list.v2+json",
      manifests: [
        {
          mediaType: "application/vnd.docker.distribution.manifest.v2+json",
          digest: image.digest,
          size: manifest.length,
          platform: { architecture: "amd64", os: "linux" },
        },
      ],
    });
    await putManifest(
      registry.url,
      "m/docker",
      "latest",
      list,
      "application/vnd.docker.distribution.manifest.list.v2+json",
    );
    const res = await fetch(`${registry.url}/v2/m/docker/manifests/latest`);
    expect(res.headers.get("content-type")).toBe("application/vnd.docker.distribution.manifest.list.v2+json");
  });

  it("refuses a manifest whose layers were never pushed with MANIFEST_BLOB_UNKNOWN", async () => {
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: emptyConfig,
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256("absent"), size: 6 }],
    });
    const res = await fetch(`${registry.url}/v2/m/missing/manifests/v1`, {
      method: "PUT",
      headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
      body: manifest,
    });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe("MANIFEST_BLOB_UNKNOWN");
  });

  it("refuses an index whose child manifests are missing", async () => {
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256("no child"), size: 8 }],
    });
    const res = await fetch(`${registry.url}/v2/m/index/manifests/v1`, {
      method: "PUT",
      headers: { "Content-Type": "application/vnd.oci.image.index.v1+json" },
      body: index,
    });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe("MANIFEST_BLOB_UNKNOWN");
  });

  it("refuses a manifest pushed by a digest that does not match its content", async () => {
    const { content } = await pushImage(registry.url, "m/pin", "v1");
    const res = await fetch(`${registry.url}/v2/m/pin/manifests/${sha256("something else")}`, {
      method: "PUT",
      headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
      body: content,
    });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe("DIGEST_INVALID");
  });
});

describe("artifacts and referrers", () => {
  it("answers OCI-Subject on a push with a subject, and lists the artifact as a referrer", async () => {
    const image = await pushImage(registry.url, "ref/app", "v1");
    await pushBlob(registry.url, "ref/app", "{}");
    const sbom = await pushBlob(registry.url, "ref/app", "sbom content");
    const subject = {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: image.digest,
      size: Buffer.byteLength(image.content),
    };
    const artifact = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      artifactType: "application/vnd.example.sbom",
      config: emptyConfig,
      layers: [{ mediaType: "text/plain", ...sbom }],
      subject,
      annotations: { "org.example.kind": "sbom" },
    });
    const pushed = await putManifest(
      registry.url,
      "ref/app",
      sha256(artifact),
      artifact,
      "application/vnd.oci.image.manifest.v1+json",
    );
    expect(pushed.res.headers.get("oci-subject")).toBe(image.digest);

    const res = await fetch(`${registry.url}/v2/ref/app/referrers/${image.digest}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/vnd.oci.image.index.v1+json");
    const index = (await res.json()) as { manifests: Record<string, unknown>[] };
    expect(index.manifests).toEqual([
      {
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: pushed.digest,
        size: Buffer.byteLength(artifact),
        artifactType: "application/vnd.example.sbom",
        annotations: { "org.example.kind": "sbom" },
      },
    ]);

    const filtered = await fetch(
      `${registry.url}/v2/ref/app/referrers/${image.digest}?artifactType=application/vnd.example.sbom`,
    );
    expect(filtered.headers.get("oci-filters-applied")).toBe("artifactType");
    expect(((await filtered.json()) as { manifests: unknown[] }).manifests).toHaveLength(1);
    const other = await fetch(`${registry.url}/v2/ref/app/referrers/${image.digest}?artifactType=application/x-other`);
    expect(((await other.json()) as { manifests: unknown[] }).manifests).toEqual([]);
  });

  it("answers 200 with an empty index for a digest nothing refers to", async () => {
    const res = await fetch(`${registry.url}/v2/ref/app/referrers/${sha256("nobody")}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [],
    });
  });
});
