import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDockerRegistry, type DockerRegistry } from "../support/docker-registry.js";
import { startDockerd } from "../support/dockerd.js";
import {
  buildDockerSchema2Image,
  buildOciImageIndex,
  buildRootfsTar,
  contentSummary,
  type BuiltImage,
} from "../support/images.js";
import { copyImage, readDirCopy } from "../support/skopeo.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

// The peers the interop suites measure Portcullis against, checked on their own: when an interop test
// fails, these say whether the peer setup or Portcullis is at fault.
describe("the reference peers started by test/support", () => {
  let work: TempDir;
  let registry: DockerRegistry;

  beforeAll(async () => {
    work = await makeTempDir("reference-peers-");
    registry = await startDockerRegistry({ root: join(work.path, "root") });
  });

  afterAll(async () => {
    await registry?.stop();
    await work?.stop();
  });

  describe("docker-registry with skopeo", () => {
    let image: BuiltImage;
    let index: BuiltImage;

    beforeAll(async () => {
      image = await buildDockerSchema2Image(join(work.path, "schema2"));
      index = await buildOciImageIndex(join(work.path, "index"));
      await copyImage(image.reference, `docker://${registry.hostPort}/team/app:v1`);
      await copyImage(index.reference, `docker://${registry.hostPort}/team/multi:latest`, { all: true });
    });

    it("serves back byte-identical the Docker schema2 image and the OCI index skopeo pushed", async () => {
      await copyImage(`docker://${registry.hostPort}/team/app:v1`, `dir:${join(work.path, "out", "app")}`);
      await copyImage(`docker://${registry.hostPort}/team/multi:latest`, `dir:${join(work.path, "out", "multi")}`, {
        all: true,
      });

      expect(contentSummary(await readDirCopy(join(work.path, "out", "app")))).toEqual(contentSummary(image));
      expect(contentSummary(await readDirCopy(join(work.path, "out", "multi")))).toEqual(contentSummary(index));
    });

    it("stores them in the registry:2 filesystem layout that Portcullis reads and writes", async () => {
      const v2 = join(registry.root, "docker", "registry", "v2");
      const hex = (digest: string) => digest.slice("sha256:".length);
      const manifestDigest = image.descriptor.digest;

      expect(await readFile(join(v2, "repositories/team/app/_manifests/tags/v1/current/link"), "utf8")).toBe(
        manifestDigest,
      );
      expect(
        existsSync(join(v2, `repositories/team/app/_manifests/tags/v1/index/sha256/${hex(manifestDigest)}/link`)),
      ).toBe(true);
      expect(
        await readFile(
          join(v2, `repositories/team/app/_manifests/revisions/sha256/${hex(manifestDigest)}/link`),
          "utf8",
        ),
      ).toBe(manifestDigest);
      for (const digest of image.blobs.keys()) {
        expect(await readFile(join(v2, `repositories/team/app/_layers/sha256/${hex(digest)}/link`), "utf8")).toBe(
          digest,
        );
        expect(existsSync(join(v2, `blobs/sha256/${hex(digest).slice(0, 2)}/${hex(digest)}/data`))).toBe(true);
      }
      expect(existsSync(join(v2, `blobs/sha256/${hex(manifestDigest).slice(0, 2)}/${hex(manifestDigest)}/data`))).toBe(
        true,
      );
    });
  });

  describe("dockerd", () => {
    it("pushes an imported image to docker-registry, pulls it back with the same id, and leaves nothing behind", async () => {
      const dockerd = await startDockerd();
      let stopped = false;
      try {
        const rootfs = await buildRootfsTar(join(work.path, "rootfs.tar"));
        const ref = `${registry.hostPort}/team/imported:v1`;
        const id = (await dockerd.docker(["import", rootfs.path, ref])).stdout.trim();
        await dockerd.docker(["push", ref]);
        await dockerd.docker(["rmi", "--force", id]);
        await dockerd.docker(["pull", ref]);

        expect((await dockerd.docker(["inspect", "--format", "{{.Id}}", ref])).stdout.trim()).toBe(id);
        const dir = join(dockerd.socket, "..");
        await dockerd.stop();
        stopped = true;
        expect(existsSync(dir)).toBe(false);
        expect(await readFile("/proc/self/mountinfo", "utf8")).not.toContain(dir);
      } finally {
        if (!stopped) await dockerd.stop();
      }
    });
  });
});
