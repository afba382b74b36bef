import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { doctorScript } from "../../src/gateway/doctor-script.js";
import { installScript } from "../../src/gateway/install-script.js";
import { CommandError, runCommand } from "../support/command.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

/** Runs a script with sh; resolves with its exit code and what it printed. */
async function sh(script: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  try {
    const { stdout } = await runCommand("/bin/sh", [script, ...args], { env });
    return { code: 0, stdout };
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    return { code: error.exitCode, stdout: error.stdout };
  }
}

describe("doctor.sh on a client", () => {
  let work: TempDir;
  let serve: PortcullisServe;
  let registry: string;
  let doctor: string;
  let install: string;

  beforeAll(async () => {
    requireTool("curl", "curl");
    work = await makeTempDir("portcullis-client-doctor-");
    serve = await startPortcullisServe();
    registry = `127.0.0.1:${serve.port}`;
    doctor = join(work.path, "doctor.sh");
    install = join(work.path, "install.sh");
    await writeFile(doctor, doctorScript(serve.caPem, registry));
    await writeFile(install, installScript(serve.caPem, registry));
  });

  afterAll(async () => {
    await serve?.stop();
    await work?.stop();
  });

  it("finds a leftover insecure-registries entry, a missing CA and a containerd without config_path", async () => {
    const root = join(work.path, "neglected");
    await mkdir(join(root, "etc", "docker"), { recursive: true });
    await writeFile(
      join(root, "etc", "docker", "daemon.json"),
      JSON.stringify({ "insecure-registries": ["old.example:5000", registry] }, null, 2),
    );
    await mkdir(join(root, "etc", "containerd"), { recursive: true });
    // Debian's containerd config as `containerd config default` writes it: config_path is empty.
    await writeFile(
      join(root, "etc", "containerd", "config.toml"),
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = ""\n',
    );
    const { code, stdout } = await sh(doctor, ["--root", root, "--offline"]);
    expect(code).toBe(1);
    expect(stdout).toContain(`FAIL  ${root}/etc/docker/daemon.json still lists ${registry} in insecure-registries`);
    expect(stdout).toContain(`FAIL  no CA for ${registry} in ${root}/etc/docker/certs.d/${registry}/ca.crt`);
    expect(stdout).toContain("x509: certificate signed by unknown authority");
    expect(stdout).toContain("FAIL  containerd does not read /etc/containerd/certs.d");
    expect(stdout).toMatch(/fix: add config_path = "\/etc\/containerd\/certs\.d"/);
  });

  it("finds a registries.conf that still marks the registry insecure", async () => {
    const root = join(work.path, "podman-insecure");
    await mkdir(join(root, "etc", "containers"), { recursive: true });
    await writeFile(
      join(root, "etc", "containers", "registries.conf"),
      `unqualified-search-registries = []\n\n[[registry]]\nlocation = "${registry}"\ninsecure = true\n`,
    );
    const { stdout } = await sh(doctor, ["--root", root, "--offline"]);
    expect(stdout).toContain(`FAIL  ${root}/etc/containers/registries.conf marks ${registry} insecure`);
  });

  it("passes a client set up by install.sh, verifies the chain and signs in", async () => {
    const root = join(work.path, "tidy");
    await mkdir(join(root, "etc", "containerd"), { recursive: true });
    await writeFile(
      join(root, "etc", "containerd", "config.toml"),
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n',
    );
    const installed = await sh(install, ["--root", root]);
    expect(installed.stdout).toContain(`done: docker, podman/skopeo/buildah, containerd now trust ${registry}`);
    const env = { ...process.env, PORTCULLIS_USERNAME: "admin", PORTCULLIS_PASSWORD: serve.adminPassword };
    const { code, stdout } = await sh(doctor, ["--root", root], env);
    expect(stdout).not.toContain("FAIL");
    expect(stdout).toContain("ok    the TLS chain verifies against the CA");
    expect(stdout).toContain("ok    admin signs in");
    expect(code).toBe(0);
  });

  it("says install.sh left containerd untrusted when containerd's config_path is not set", async () => {
    const root = join(work.path, "stock-containerd");
    await mkdir(join(root, "etc", "containerd"), { recursive: true });
    await writeFile(join(root, "etc", "containerd", "config.toml"), "version = 2\n");
    const { stdout } = await sh(install, ["--root", root]);
    expect(stdout).toContain(`done: docker, podman/skopeo/buildah now trust ${registry}`);
    expect(stdout).not.toContain("containerd now trust");
  });
});
