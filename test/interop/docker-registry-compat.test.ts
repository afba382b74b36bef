import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistryServer, type RegistryServer } from "../../src/registry/server.js";
import { startDockerRegistry, type DockerRegistry } from "../support/docker-registry.js";
import {
  buildDockerSchema2Image,
  buildOciArtifact,
  buildOciImageIndex,
  contentSummary,
  type BuiltImage,
} from "../support/images.js";
import { copyImage, readDirCopy } from "../support/skopeo.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

interface Listing {
  catalog: string[];
  tags: Record<string, string[]>;
}

interface Pushed {
  ref: string;
  image: BuiltImage;
  all: boolean;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

/** The catalog and every repository's tags, sorted, as `url` serves them. */
async function listing(url: string): Promise<Listing> {
  const { repositories } = await getJson<{ repositories: string[] }>(`${url}/v2/_catalog`);
  const tags: Record<string, string[]> = {};
  for (const name of repositories) {
    tags[name] = (await getJson<{ name: string; tags: string[] }>(`${url}/v2/${name}/tags/list`)).tags.sort();
  }
  return { catalog: repositories, tags };
}

/** Builds a Docker schema2 image, an OCI index and an artifact naming the image, and pushes them to `hostPort`. */
async function pushImages(dir: string, hostPort: string): Promise<Pushed[]> {
  const image = await buildDockerSchema2Image(join(dir, "schema2"));
  const pushed: Pushed[] = [
    { ref: "team/app:v1", image, all: false },
    { ref: "team/app:v1.0.0", image, all: false },
    { ref: "library/base:3", image: await buildDockerSchema2Image(join(dir, "base")), all: false },
    { ref: "team/multi:latest", image: await buildOciImageIndex(join(dir, "index")), all: true },
    {
      ref: "team/app:sbom",
      image: await buildOciArtifact(join(dir, "artifact"), { subject: image.descriptor }),
      all: false,
    },
  ];
  for (const { ref, image: built, all } of pushed) {
    await copyImage(built.reference, `docker://${hostPort}/${ref}`, { all });
  }
  return pushed;
}

async function expectEveryImagePullsByteIdentical(pushed: Pushed[], hostPort: string, outDir: string): Promise<void> {
  for (const { ref, image, all } of pushed) {
    const out = join(outDir, ref.replace(/[/:]/g, "-"));
    await copyImage(`docker://${hostPort}/${ref}`, `dir:${out}`, { all });
    expect(contentSummary(await readDirCopy(out)), ref).toEqual(contentSummary(image));
  }
}

const expectedListing: Listing = {
  catalog: ["library/base", "team/app", "team/multi"],
  tags: { "library/base": ["3"], "team/app": ["sbom", "v1", "v1.0.0"], "team/multi": ["latest"] },
};

describe("a storage root written by Debian's docker-registry (distribution 2.8), then served by Portcullis", () => {
  let work: TempDir;
  let registry: RegistryServer;
  let hostPort: string;
  let pushed: Pushed[];
  let writtenListing: Listing;

  beforeAll(async () => {
    requireTool("skopeo", "skopeo");
    requireTool("docker-registry", "docker-registry");
    work = await makeTempDir("registry-compat-");
    const root = join(work.path, "root");
    const reference: DockerRegistry = await startDockerRegistry({ root });
    try {
      pushed = await pushImages(join(work.path, "images"), reference.hostPort);
      writtenListing = await listing(reference.url);
    } finally {
      await reference.stop();
    }
    registry = await startRegistryServer({ root, listen: "127.0.0.1:0" });
    hostPort = new URL(registry.url).host;
  });

  afterAll(async () => {
    await registry?.close();
    await work?.stop();
  });

  it("lists the same repositories in the catalog and the same tags as docker-registry did", async () => {
    expect(writtenListing).toEqual(expectedListing);
    expect(await listing(registry.url)).toEqual(writtenListing);
  });

  it("serves every image byte-identical to what skopeo pushed to docker-registry", async () => {
    await expectEveryImagePullsByteIdentical(pushed, hostPort, join(work.path, "out"));
  });

  it("lists the artifact docker-registry stored as a referrer of its subject", async () => {
    const image = pushed.find((p) => p.ref === "team/app:v1")!.image;
    const artifact = pushed.find((p) => p.ref === "team/app:sbom")!.image;

    const res = await fetch(`${registry.url}/v2/team/app/referrers/${image.descriptor.digest}`);

    expect(res.status).toBe(200);
    const body = (await res.json()) as { manifests: { digest: string }[] };
    expect(body.manifests.map((m) => m.digest)).toEqual([artifact.descriptor.digest]);
  });
});

describe("a storage root written by Portcullis, then served by Debian's docker-registry (distribution 2.8)", () => {
  let work: TempDir;
  let reference: DockerRegistry;
  let pushed: Pushed[];
  let writtenListing: Listing;

  beforeAll(async () => {
    requireTool("skopeo", "skopeo");
    requireTool("docker-registry", "docker-registry");
    work = await makeTempDir("registry-compat-");
    const root = join(work.path, "root");
    const registry = await startRegistryServer({ root, listen: "127.0.0.1:0" });
    try {
      pushed = await pushImages(join(work.path, "images"), new URL(registry.url).host);
      writtenListing = await listing(registry.url);
    } finally {
      await registry.close();
    }
    reference = await startDockerRegistry({ root });
  });

  afterAll(async () => {
    await reference?.stop();
    await work?.stop();
  });

  it("lists in docker-registry's catalog the same repositories and tags Portcullis did", async () => {
    expect(writtenListing).toEqual(expectedListing);
    expect(await listing(reference.url)).toEqual(writtenListing);
  });

  it("serves from docker-registry every image byte-identical to what skopeo pushed to Portcullis", async () => {
    await expectEveryImagePullsByteIdentical(pushed, reference.hostPort, join(work.path, "out"));
  });
});
