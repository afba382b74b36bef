import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { connect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CommandError } from "../support/command.js";
import { startDockerd, type Dockerd } from "../support/dockerd.js";
import { buildRootfsTar } from "../support/images.js";
import {
  downloadInstallScript,
  prepareMachineInstall,
  type MachineInstall,
  printedScriptChecksum,
} from "../support/install-script.js";
import { createVethNamespace, type VethNamespace } from "../support/netns.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

interface RegistryConfig {
  InsecureRegistryCIDRs: string[];
  IndexConfigs: Record<string, { Name: string; Secure: boolean }>;
}

/** The certificate the gateway presents at `host:port`, verified by Node against `caPem` (chain and IP SAN). */
function presentedCertificate(host: string, port: number, caPem: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ca: caPem }, () => {
      const certificate = socket.getPeerX509Certificate();
      socket.end();
      if (certificate === undefined) reject(new Error(`${host}:${port} presented no certificate`));
      else resolve(certificate);
    });
    socket.once("error", reject);
  });
}

// docker skips certificate checks for every registry in 127.0.0.0/8, so this dockerd lives in a network
// namespace of its own and reaches the gateway on a veth address: the only way to see docker verify TLS.
describe("docker in a network namespace trusting the gateway after the install script, with no insecure-registries", () => {
  let work: TempDir;
  let netns: VethNamespace;
  let serve: PortcullisServe;
  let dockerd: Dockerd;
  /** 198.18.X.1:PORT, the name docker gives the registry (and its certs.d directory) */
  let registry: string;
  let repository: string;
  let imageId: string;
  let script: string;
  /** The script run on this machine's root, which afterAll undoes. */
  let machineInstall: MachineInstall | undefined;
  let pushedDigest: string | undefined;

  beforeAll(async () => {
    requireTool("ip", "iproute2");
    requireTool("nsenter", "util-linux");
    requireTool("dockerd", "docker.io");
    requireTool("curl", "curl");
    work = await makeTempDir("docker-trust-netns-");
    // The veth pair comes first: serve puts the addresses of the interfaces it finds at start in its certificate.
    netns = await createVethNamespace();
    serve = await startPortcullisServe({ host: netns.hostAddress });
    registry = `${netns.hostAddress}:${serve.port}`;
    repository = `${registry}/team/app`;
    script = join(work.path, "portcullis-ca.sh");
    machineInstall = await prepareMachineInstall(registry, script);
    dockerd = await startDockerd({ netns: netns.name });
    const rootfs = await buildRootfsTar(join(work.path, "rootfs.tar"), 1024 * 1024);
    imageId = (await dockerd.docker(["import", rootfs.path, `${repository}:v1`])).stdout.trim();
  });

  afterAll(async () => {
    await machineInstall?.undo();
    await dockerd?.stop();
    await serve?.stop();
    if (serve) await removeTempDir(serve.home);
    await netns?.stop();
    await work?.stop();
  });

  function digestOfPush(): string {
    if (pushedDigest === undefined)
      throw new Error("the push test did not record a digest, so there is nothing to pull");
    return pushedDigest;
  }

  it("presents a certificate, issued by its CA, that names the veth address docker dials", async () => {
    const certificate = await presentedCertificate(netns.hostAddress, serve.port, serve.caPem);

    expect(certificate.subjectAltName?.split(", ")).toContain(`IP Address:${netns.hostAddress}`);
    expect(certificate.checkIP(netns.hostAddress)).toBe(netns.hostAddress);
    expect(certificate.checkIssued(new X509Certificate(serve.caPem))).toBe(true);
  });

  it("runs a dockerd that lists no insecure registry besides docker's own loopback default", async () => {
    const { stdout } = await dockerd.docker(["info", "--format", "{{json .RegistryConfig}}"]);
    const config = JSON.parse(stdout) as RegistryConfig;

    expect(config.InsecureRegistryCIDRs).toEqual(["127.0.0.0/8"]);
    expect(Object.values(config.IndexConfigs).filter((index) => !index.Secure)).toEqual([]);
    expect(Object.keys(config.IndexConfigs)).not.toContain(registry);
  });

  it("refuses to push to the gateway with an x509 error before the CA is installed", async () => {
    const failure = await dockerd.docker(["push", `${repository}:v1`]).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(CommandError);
    expect((failure as CommandError).stderr).toContain(
      `Get "https://${registry}/v2/": x509: certificate signed by unknown authority`,
    );
  });

  it("refuses to pull from the gateway with an x509 error before the CA is installed", async () => {
    await expect(dockerd.docker(["pull", `${repository}:v1`])).rejects.toThrow(
      /x509: certificate signed by unknown authority/,
    );
  });

  it("installs the CA for docker with the script fetched from inside the namespace, matching the printed checksum", async () => {
    const checksum = await downloadInstallScript(registry, script, netns.run);
    expect(checksum).toBe(printedScriptChecksum(await serve.output(), registry));

    await machineInstall?.run();

    expect(await readFile(`/etc/docker/certs.d/${registry}/ca.crt`, "utf8")).toBe(serve.caPem);
  });

  it("pushes through the gateway once the CA is installed", async () => {
    await dockerd.login(registry, "admin", serve.adminPassword);
    const { stdout } = await dockerd.docker(["push", `${repository}:v1`]);

    const reported = /v1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(stdout);
    expect(reported, stdout).not.toBeNull();
    pushedDigest = reported![1]!;
  });

  it("pulls the image back through the gateway after removing it locally, with the same image id", async () => {
    const digest = digestOfPush();
    await dockerd.docker(["rmi", "--force", imageId]);
    await expect(dockerd.docker(["image", "inspect", `${repository}:v1`])).rejects.toThrow(/No such image/);

    const { stdout } = await dockerd.docker(["pull", `${repository}:v1`]);

    expect(stdout).toContain(`Digest: ${digest}`);
    const { stdout: id } = await dockerd.docker(["image", "inspect", "--format", "{{.Id}}", `${repository}:v1`]);
    expect(id.trim()).toBe(imageId);
  });
});
