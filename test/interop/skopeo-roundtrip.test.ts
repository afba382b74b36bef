import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistryServer, type RegistryServer } from "../../src/registry/server.js";
import {
  MEDIA_TYPES,
  buildDockerSchema2Image,
  buildOciArtifact,
  buildOciImageIndex,
  contentSummary,
  sha256,
  type BuiltArtifact,
  type BuiltImage,
} from "../support/images.js";
import { copyImage, inspectRaw, readDirCopy } from "../support/skopeo.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

interface ReferrersIndex {
  schemaVersion: number;
  mediaType: string;
  manifests: {
    mediaType: string;
    digest: string;
    size: number;
    artifactType?: string;
    annotations?: Record<string, string>;
  }[];
}

describe("skopeo copying images through the built-in registry", () => {
  let work: TempDir;
  let registry: RegistryServer;
  let hostPort: string;

  beforeAll(async () => {
    requireTool("skopeo", "skopeo");
    work = await makeTempDir("skopeo-roundtrip-");
    registry = await startRegistryServer({ root: join(work.path, "root"), listen: "127.0.0.1:0" });
    hostPort = new URL(registry.url).host;
  });

  afterAll(async () => {
    await registry?.close();
    await work?.stop();
  });

  /** Pushes `image` to `ref`, copies it back out to a `dir:` and returns what came back. */
  async function roundTrip(image: BuiltImage, ref: string, all = false) {
    await copyImage(image.reference, `docker://${hostPort}/${ref}`, { all });
    const out = join(work.path, `out-${ref.replace(/[/:]/g, "-")}`);
    await copyImage(`docker://${hostPort}/${ref}`, `dir:${out}`, { all });
    return readDirCopy(out);
  }

  it("serves a Docker schema2 image back byte-identical, with its media type and digest", async () => {
    // One layer of several MiB, streamed in one PATCH by skopeo, and one small one.
    const image = await buildDockerSchema2Image(join(work.path, "schema2"), {
      layerSizes: [6 * 1024 * 1024, 16 * 1024],
    });
    const back = await roundTrip(image, "team/app:v1");

    expect(contentSummary(back)).toEqual(contentSummary(image));
    const res = await fetch(`${registry.url}/v2/team/app/manifests/v1`, {
      headers: { Accept: MEDIA_TYPES.dockerManifest },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(MEDIA_TYPES.dockerManifest);
    expect(res.headers.get("docker-content-digest")).toBe(image.descriptor.digest);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(image.descriptor.digest);
  });

  it("serves an OCI index of linux/amd64 and linux/arm64 images back byte-identical, index and both images", async () => {
    const index = await buildOciImageIndex(join(work.path, "index"));
    const back = await roundTrip(index, "team/multi:latest", true);

    expect(contentSummary(back)).toEqual(contentSummary(index));
    expect(back.manifests.size).toBe(3);
    const raw = await inspectRaw(`docker://${hostPort}/team/multi:latest`);
    expect(sha256(raw)).toBe(index.descriptor.digest);
  });

  it("serves an artifact whose subject is an image back byte-identical", async () => {
    const image = await buildDockerSchema2Image(join(work.path, "subject"));
    await copyImage(image.reference, `docker://${hostPort}/team/signed:v1`);
    const artifact = await buildOciArtifact(join(work.path, "artifact"), { subject: image.descriptor });
    const back = await roundTrip(artifact, "team/signed:sbom");

    expect(contentSummary(back)).toEqual(contentSummary(artifact));
  });

  describe("the referrers API, once skopeo has pushed an image and an artifact naming it as subject", () => {
    let image: BuiltImage;
    let artifact: BuiltArtifact;

    beforeAll(async () => {
      image = await buildDockerSchema2Image(join(work.path, "referred"));
      artifact = await buildOciArtifact(join(work.path, "referrer"), {
        subject: image.descriptor,
        artifactType: "application/vnd.example.sbom",
      });
      await copyImage(image.reference, `docker://${hostPort}/team/referred:v1`);
      await copyImage(artifact.reference, `docker://${hostPort}/team/referred:sbom`);
    });

    async function referrers(digest: string, query = "") {
      const res = await fetch(`${registry.url}/v2/team/referred/referrers/${digest}${query}`);
      const body = (await res.json()) as ReferrersIndex;
      return { res, body };
    }

    it("lists the artifact, with its artifactType and annotations, as a referrer of the image", async () => {
      const { res, body } = await referrers(image.descriptor.digest);

      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe(MEDIA_TYPES.ociIndex);
      expect(body.schemaVersion).toBe(2);
      expect(body.mediaType).toBe(MEDIA_TYPES.ociIndex);
      const manifest = JSON.parse(artifact.manifests.get(artifact.descriptor.digest)!.toString()) as {
        annotations: Record<string, string>;
      };
      expect(body.manifests).toEqual([
        {
          mediaType: MEDIA_TYPES.ociManifest,
          digest: artifact.descriptor.digest,
          size: artifact.descriptor.size,
          artifactType: "application/vnd.example.sbom",
          annotations: manifest.annotations,
        },
      ]);
    });

    it("lists the artifact when filtered by its artifactType and says the filter was applied", async () => {
      const { res, body } = await referrers(
        image.descriptor.digest,
        `?artifactType=${encodeURIComponent("application/vnd.example.sbom")}`,
      );

      expect(res.status).toBe(200);
      expect(res.headers.get("oci-filters-applied")).toBe("artifactType");
      expect(body.manifests.map((m) => m.digest)).toEqual([artifact.descriptor.digest]);
    });

    it("lists nothing when filtered by another artifactType", async () => {
      const { res, body } = await referrers(
        image.descriptor.digest,
        `?artifactType=${encodeURIComponent("application/vnd.example.signature")}`,
      );

      expect(res.status).toBe(200);
      expect(res.headers.get("oci-filters-applied")).toBe("artifactType");
      expect(body.mediaType).toBe(MEDIA_TYPES.ociIndex);
      expect(body.manifests).toEqual([]);
    });

    it("answers an empty index for a manifest nothing refers to", async () => {
      const { res, body } = await referrers(artifact.descriptor.digest);

      expect(res.status).toBe(200);
      expect(body.manifests).toEqual([]);
    });
  });
});
