import { readFile, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CommandError } from "../support/command.js";
import { writeContainersClientConfig, type ContainersClientConfig } from "../support/containers-client.js";
import { buildDockerSchema2Image, buildRootfsTar, contentSummary, sha256 } from "../support/images.js";
import {
  expectedHostsToml,
  installedFiles,
  installForClientRoot,
  printedScriptChecksum,
  runInstallScript,
} from "../support/install-script.js";
import { createPodman, type Podman } from "../support/podman.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { listFiles } from "../support/registry-under-test.js";
import { copyOverTls, inspectRawOverTls, readDirCopy } from "../support/skopeo.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

describe("the CA install script, and skopeo and podman trusting the gateway through the files it writes", () => {
  let work: TempDir;
  let serve: PortcullisServe;
  let podman: Podman;
  /** 127.0.0.1:PORT, the name clients give the registry */
  let registry: string;
  let script: string;
  let scriptChecksum: string;
  /** The podman/skopeo cert dir the script wrote, under a root of the test's own. */
  let certDir: string;
  /** skopeo's registries.conf, of the test's own and marking nothing insecure, and signature policy. */
  let clientConfig: ContainersClientConfig;
  let testRoots = 0;

  beforeAll(async () => {
    requireTool("skopeo", "skopeo");
    requireTool("podman", "podman");
    requireTool("curl", "curl");
    work = await makeTempDir("ca-install-script-");
    serve = await startPortcullisServe();
    registry = `127.0.0.1:${serve.port}`;
    ({ script, checksum: scriptChecksum, certDir } = await installForClientRoot(registry, work.path));
    clientConfig = await writeContainersClientConfig(work.path, { registry });
    podman = await createPodman({ registriesConf: clientConfig.registriesConf });
  });

  afterAll(async () => {
    await podman?.stop();
    await serve?.stop();
    if (serve) await removeTempDir(serve.home);
    await work?.stop();
  });

  function newRoot(): string {
    testRoots += 1;
    return join(work.path, `root-${testRoots}`);
  }

  /** Every file under `root` with its mode and content, to compare two states of a root. */
  async function snapshot(root: string): Promise<Record<string, { mode: string; content: string }>> {
    const files: Record<string, { mode: string; content: string }> = {};
    for (const file of await listFiles(root)) {
      const path = join(root, file);
      files[file] = { mode: ((await stat(path)).mode & 0o777).toString(8), content: await readFile(path, "utf8") };
    }
    return files;
  }

  function relativeInstalledFiles(root: string): string[] {
    return installedFiles(registry, root)
      .map((path) => relative(root, path))
      .sort();
  }

  /** The first-start admin's credentials, as `USER:PASSWORD` for `--creds`. */
  const creds = () => `admin:${serve.adminPassword}`;

  /** skopeo as the first-start admin, trusting the installed cert dir. */
  const trustingClient = () => ({ ...clientConfig, certDir, creds: creds() });

  it("serves a script whose SHA-256 is the one the server printed on its console", async () => {
    expect(scriptChecksum).toBe(printedScriptChecksum(await serve.output(), registry));
  });

  it("installs the CA for docker, podman/skopeo and containerd into --root, and nothing else", async () => {
    const root = newRoot();

    await runInstallScript(script, ["--root", root]);

    expect(await listFiles(root)).toEqual(relativeInstalledFiles(root));
    const [dockerCa, containersCa, containerdCa, hostsToml] = installedFiles(registry, root);
    for (const ca of [dockerCa!, containersCa!, containerdCa!]) {
      expect(await readFile(ca, "utf8")).toBe(serve.caPem);
      expect((await stat(ca)).mode & 0o777).toBe(0o644);
    }
    expect(await readFile(hostsToml!, "utf8")).toBe(expectedHostsToml(registry));
  });

  it("changes nothing when run a second time", async () => {
    const root = newRoot();
    await runInstallScript(script, ["--root", root]);
    const first = await snapshot(root);

    await runInstallScript(script, ["--root", root]);

    expect(await snapshot(root)).toEqual(first);
    expect(Object.keys(first).sort()).toEqual(relativeInstalledFiles(root));
  });

  it("removes every file it installed with --uninstall", async () => {
    const root = newRoot();
    await runInstallScript(script, ["--root", root]);

    await runInstallScript(script, ["--uninstall", "--root", root]);

    expect(await listFiles(root)).toEqual([]);
    for (const file of installedFiles(registry, root)) {
      await expect(stat(join(file, ".."))).rejects.toMatchObject({ code: "ENOENT" });
    }
  });

  it("also adds the CA to Debian's trust anchors with --system, and takes it out again with --uninstall", async () => {
    const root = newRoot();
    const anchor = `usr/local/share/ca-certificates/portcullis-127.0.0.1_${serve.port}.crt`;

    await runInstallScript(script, ["--system", "--root", root]);

    expect(await listFiles(root)).toEqual([...relativeInstalledFiles(root), anchor].sort());
    expect(await readFile(join(root, anchor), "utf8")).toBe(serve.caPem);

    await runInstallScript(script, ["--system", "--uninstall", "--root", root]);

    expect(await listFiles(root)).toEqual([]);
  });

  it("lets skopeo push an image through the gateway and pull it back byte-identical, verifying TLS with the installed CA", async () => {
    const image = await buildDockerSchema2Image(join(work.path, "skopeo-image"), {
      layerSizes: [2 * 1024 * 1024, 16 * 1024],
    });
    const reference = `docker://${registry}/team/skopeo:v1`;
    const back = join(work.path, "skopeo-back");

    await copyOverTls(image.reference, reference, trustingClient());
    await copyOverTls(reference, `dir:${back}`, trustingClient());

    const copy = await readDirCopy(back);
    expect(contentSummary(copy)).toEqual(contentSummary(image));
    expect(await readFile(join(back, "manifest.json"))).toEqual(image.manifests.get(image.descriptor.digest));
  });

  it("makes skopeo refuse the gateway with an unknown-authority error when it is not given the cert dir", async () => {
    const image = await buildDockerSchema2Image(join(work.path, "untrusted-image"), { layerSizes: [1024] });

    const failure = await copyOverTls(image.reference, `docker://${registry}/team/untrusted:v1`, {
      ...clientConfig,
      creds: creds(),
    }).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(CommandError);
    expect((failure as CommandError).stderr).toMatch(/x509: certificate signed by unknown authority/);
    await expect(inspectRawOverTls(`docker://${registry}/team/untrusted:v1`, trustingClient())).rejects.toThrow(
      /manifest unknown|name unknown/i,
    );
  });

  it("lets podman push an imported image through the gateway and pull it back, verifying TLS with the installed CA", async () => {
    const rootfs = await buildRootfsTar(join(work.path, "podman-rootfs.tar"));
    const reference = `${registry}/team/podman:v1`;
    const imageId = (await podman.podman(["import", rootfs.path, reference])).stdout.trim();
    const digestFile = join(work.path, "podman-digest");

    await podman.podman(["push", "--cert-dir", certDir, "--creds", creds(), "--digestfile", digestFile, reference]);

    const pushedDigest = (await readFile(digestFile, "utf8")).trim();
    const served = await inspectRawOverTls(`docker://${reference}`, trustingClient());
    expect(sha256(served.stdout)).toBe(pushedDigest);

    await podman.podman(["rmi", reference]);
    await expect(podman.podman(["image", "exists", reference])).rejects.toThrow();

    await podman.podman(["pull", "--cert-dir", certDir, "--creds", creds(), reference]);

    const { stdout } = await podman.podman(["image", "inspect", "--format", "{{.Id}}", reference]);
    expect(stdout.trim()).toBe(imageId.replace(/^sha256:/, ""));
  });
});
