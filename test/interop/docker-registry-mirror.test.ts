import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { requestsSeen, startDockerRegistry, type DockerRegistry } from "../support/docker-registry.js";
import { startDockerd, type Dockerd } from "../support/dockerd.js";
import { httpsRequest } from "../support/https-client.js";
import {
  MEDIA_TYPES,
  buildOciImageIndex,
  buildRootfsImage,
  buildRootfsTar,
  type BuiltImage,
  type Descriptor,
  type RootfsImage,
} from "../support/images.js";
import { downloadInstallScript, prepareMachineInstall, type MachineInstall } from "../support/install-script.js";
import { createVethNamespace, type VethNamespace } from "../support/netns.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { copyImage } from "../support/skopeo.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

interface RegistryConfig {
  InsecureRegistryCIDRs: string[];
  Mirrors: string[];
}

interface ImageManifest {
  config: Descriptor;
  layers: Descriptor[];
}

/** The manifests an index lists, by platform (`linux/amd64`), each with its parsed content. */
function platformManifests(index: BuiltImage): Map<string, { digest: string; manifest: ImageManifest }> {
  const listed = JSON.parse(index.manifests.get(index.descriptor.digest)!.toString("utf8")) as {
    manifests: Descriptor[];
  };
  return new Map(
    listed.manifests.map((child) => [
      `${child.platform!.os}/${child.platform!.architecture}`,
      {
        digest: child.digest,
        manifest: JSON.parse(index.manifests.get(child.digest)!.toString("utf8")) as ImageManifest,
      },
    ]),
  );
}

/** The image docker pulls as `NAME`: docker.io/library/NAME, which the mirror serves from library/NAME. */
const name = "portcullis-mirror-test";
const repository = `library/${name}`;
/** A multi-platform image (an OCI index over linux/amd64 and linux/arm64), as most of Docker Hub's are. */
const indexName = "portcullis-mirror-index";
const indexRepository = `library/${indexName}`;

const forRepository = async (registry: DockerRegistry, repo: string) =>
  (await requestsSeen(registry)).filter((request) => request.path.startsWith(`/v2/${repo}/`));

// docker skips certificate checks for every registry in 127.0.0.0/8, so this dockerd lives in a network
// namespace of its own and reaches Portcullis on a veth address. From there registry-1.docker.io is
// unreachable (no route, no DNS): a pull that succeeds came through the mirror.
describe("a dockerd in a network namespace using Portcullis as its registry mirror, with no insecure-registries", () => {
  let work: TempDir;
  let netns: VethNamespace;
  let upstream: DockerRegistry;
  let serve: PortcullisServe;
  let dockerd: Dockerd;
  let image: RootfsImage;
  let index: BuiltImage;
  /** VETH_IP:PORT, the name docker gives the mirror (and its certs.d directory). */
  let mirror: string;
  let script: string;
  /** The script run on this machine's root, which afterAll undoes. */
  let machineInstall: MachineInstall | undefined;

  beforeAll(async () => {
    requireTool("ip", "iproute2");
    requireTool("nsenter", "util-linux");
    requireTool("dockerd", "docker.io");
    requireTool("docker-registry", "docker-registry");
    requireTool("skopeo", "skopeo");
    requireTool("curl", "curl");
    work = await makeTempDir("docker-registry-mirror-");
    upstream = await startDockerRegistry();
    const rootfs = await buildRootfsTar(join(work.path, "rootfs.tar"), 256 * 1024);
    image = await buildRootfsImage(join(work.path, "image"), rootfs);
    await copyImage(image.reference, `docker://${upstream.hostPort}/${repository}:latest`);
    index = await buildOciImageIndex(join(work.path, "index"), { layerSizes: [16 * 1024, 4 * 1024] });
    await copyImage(index.reference, `docker://${upstream.hostPort}/${indexRepository}:latest`, { all: true });

    // The veth pair comes first: serve puts the addresses of the interfaces it finds at start in its certificate.
    netns = await createVethNamespace();
    const config = join(work.path, "portcullis.yaml");
    await writeFile(
      config,
      stringify({
        upstreams: { hub: { url: upstream.url } },
        mirrors: [{ prefix: "", upstream: "hub" }],
        // docker has no way to sign in to a mirror: it asks for its token without credentials.
        auth: { anonymous: true },
        policies: [
          { group: "admins", repository: "*", actions: ["*"] },
          { anonymous: true, repository: "library/*", actions: ["pull"] },
        ],
      }),
    );
    serve = await startPortcullisServe({ host: netns.hostAddress, args: ["--config", config] });
    mirror = `${netns.hostAddress}:${serve.port}`;
    script = join(work.path, "portcullis-ca.sh");
    machineInstall = await prepareMachineInstall(mirror, script);
    dockerd = await startDockerd({ netns: netns.name, daemonConfig: { "registry-mirrors": [`https://${mirror}`] } });
  });

  afterAll(async () => {
    await machineInstall?.undo();
    await dockerd?.stop();
    await serve?.stop();
    if (serve) await removeTempDir(serve.home);
    await netns?.stop();
    await upstream?.stop();
    await work?.stop();
  });

  /** What dockerd logs each time it gives up on an endpoint (the mirror, then Docker Hub) during a pull. */
  async function fallbacks(): Promise<string[]> {
    return (await dockerd.log()).split("\n").filter((line) => line.includes("Attempting next endpoint for pull"));
  }

  /**
   * `docker pull REFERENCE`. When the mirror fails, docker tries Docker Hub, which is unreachable from the
   * namespace, and reports only that last error; the mirror's answer is in dockerd's log, so a failure shows it.
   */
  async function pull(reference: string) {
    try {
      return await dockerd.docker(["pull", reference]);
    } catch (error) {
      throw new Error(`${String(error)}\ndockerd's log:\n${(await fallbacks()).join("\n")}`, { cause: error });
    }
  }

  it("runs a dockerd whose only mirror is Portcullis on the veth address, with no insecure registry but loopback", async () => {
    const { stdout } = await dockerd.docker(["info", "--format", "{{json .RegistryConfig}}"]);
    const config = JSON.parse(stdout) as RegistryConfig;

    expect(config.Mirrors).toEqual([`https://${mirror}/`]);
    expect(config.InsecureRegistryCIDRs).toEqual(["127.0.0.0/8"]);
  });

  it("installs the CA where docker looks for the mirror's, with the script fetched from inside the namespace", async () => {
    await downloadInstallScript(mirror, script, netns.run);

    await machineInstall?.run();

    expect(await readFile(`/etc/docker/certs.d/${mirror}/ca.crt`, "utf8")).toBe(serve.caPem);
  });

  it("pulls NAME through the mirror, which fetched it from the upstream into its storage", async () => {
    const before = await forRepository(upstream, repository);

    const { stdout } = await pull(name);

    expect(stdout).toContain(`Digest: ${image.descriptor.digest}`);
    expect(stdout).toContain(`docker.io/${repository}:latest`);
    expect(await fallbacks()).toEqual([]);
    const fetched = (await forRepository(upstream, repository)).slice(before.length);
    expect(fetched).toContainEqual({ method: "GET", path: `/v2/${repository}/manifests/${image.descriptor.digest}` });
    for (const digest of image.blobs.keys())
      expect(fetched).toContainEqual({ method: "GET", path: `/v2/${repository}/blobs/${digest}` });
    const v2 = join(serve.dataDir, "docker", "registry", "v2", "repositories", repository, "_manifests");
    expect(await readFile(join(v2, "tags", "latest", "current", "link"), "utf8")).toBe(image.descriptor.digest);
  });

  it("holds the pulled image under docker's name for it, with the config's digest as its id and the layer unpacked", async () => {
    const { stdout: id } = await dockerd.docker(["image", "inspect", "--format", "{{.Id}}", name]);
    expect(id.trim()).toBe(image.configDigest);

    const { stdout: container } = await dockerd.docker(["create", "--network", "none", name]);
    try {
      const { stdout: copied } = await dockerd.docker(["cp", `${container.trim()}:/etc/portcullis-test-id`, "-"]);
      expect(copied).toContain(image.rootfs.marker);
    } finally {
      await dockerd.docker(["rm", container.trim()]);
    }
  });

  it("serves a second pull from its cache without asking the upstream", async () => {
    await dockerd.docker(["rmi", name]);
    const before = await requestsSeen(upstream);

    const { stdout } = await pull(name);

    expect(stdout).toContain(`Digest: ${image.descriptor.digest}`);
    expect(await requestsSeen(upstream)).toEqual(before);
  });

  it("pulls a multi-platform index through the mirror, fetching only the linux/amd64 image docker picks from it", async () => {
    const { amd64, arm64 } = Object.fromEntries(
      [...platformManifests(index)].map(([platform, child]) => [platform.split("/")[1], child]),
    );

    const before = await forRepository(upstream, indexRepository);

    const { stdout } = await pull(indexName);

    expect(stdout).toContain(`Digest: ${index.descriptor.digest}`);
    expect(await fallbacks()).toEqual([]);
    const { stdout: id } = await dockerd.docker(["image", "inspect", "--format", "{{.Id}}", indexName]);
    expect(id.trim()).toBe(amd64!.manifest.config.digest);
    const fetched = (await forRepository(upstream, indexRepository))
      .slice(before.length)
      .map((request) => request.path);
    expect(fetched).toContain(`/v2/${indexRepository}/manifests/${amd64!.digest}`);
    for (const blob of [amd64!.manifest.config, ...amd64!.manifest.layers])
      expect(fetched).toContain(`/v2/${indexRepository}/blobs/${blob.digest}`);
    expect(fetched.filter((path) => path.includes(arm64!.digest.slice("sha256:".length)))).toEqual([]);
  });

  // containerd's resolver (and docker with the containerd image store) adds `ns=REGISTRY` to every request
  // it sends a mirror, and asks for a token without credentials.
  it("answers a mirror request carrying ?ns=docker.io with an anonymous token, fetching what is not cached", async () => {
    const arm64 = platformManifests(index).get("linux/arm64")!;
    const base = `https://${mirror}`;
    const probe = await httpsRequest(`${base}/v2/`, { ca: serve.caPem });
    expect(probe.status).toBe(401);
    const challenge = /realm="([^"]+)",service="([^"]+)"/.exec(String(probe.headers["www-authenticate"]))!;
    const query = new URLSearchParams({ scope: `repository:${indexRepository}:pull`, service: challenge[2]! });
    const tokenAnswer = await httpsRequest(`${challenge[1]}?${query}`, { ca: serve.caPem });
    expect(tokenAnswer.status).toBe(200);
    const headers = {
      Authorization: `Bearer ${(JSON.parse(tokenAnswer.body.toString("utf8")) as { token: string }).token}`,
      Accept: [MEDIA_TYPES.ociIndex, MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest].join(", "),
    };

    const manifest = await httpsRequest(`${base}/v2/${indexRepository}/manifests/${arm64.digest}?ns=docker.io`, {
      ca: serve.caPem,
      headers,
    });
    const layer = arm64.manifest.layers[0]!;
    const blob = await httpsRequest(`${base}/v2/${indexRepository}/blobs/${layer.digest}?ns=docker.io`, {
      ca: serve.caPem,
      headers,
    });

    expect([manifest.status, manifest.headers["docker-content-digest"]]).toEqual([200, arm64.digest]);
    expect([blob.status, blob.body.length, blob.headers["docker-content-digest"]]).toEqual([
      200,
      layer.size,
      layer.digest,
    ]);
    const fetched = (await forRepository(upstream, indexRepository)).map((request) => request.path);
    expect(fetched).toContain(`/v2/${indexRepository}/manifests/${arm64.digest}`);
    expect(fetched).toContain(`/v2/${indexRepository}/blobs/${layer.digest}`);
  });
});
