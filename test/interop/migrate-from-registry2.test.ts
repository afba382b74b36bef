import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCommand } from "../support/command.js";
import { runPortcullis } from "../support/cli-run.js";
import { writeCertDir } from "../support/containers-client.js";
import { startDockerRegistry, type DockerRegistry } from "../support/docker-registry.js";
import { buildDockerSchema2Image, contentSummary, type BuiltImage } from "../support/images.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { copyOverTls, readDirCopy, skopeo } from "../support/skopeo.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

/** Users as Apache's `htpasswd -B` writes them for registry:2: `$2y$` bcrypt hashes. */
const oldUsers = { olduser: "old-secret-1", second: "second-pass-2" };

describe("migrating a registry:2 installation in one command", () => {
  let home: TempDir;
  let registry: DockerRegistry | undefined;
  let serve: PortcullisServe;
  let oldPort: number;
  let migrated: { stdout: string; config: Record<string, unknown> };
  const images: [string, BuiltImage][] = [];

  beforeAll(async () => {
    const htpasswd = requireTool("htpasswd", "apache2-utils");
    home = await makeTempDir("portcullis-migrate-");
    const htpasswdFile = join(home.path, "auth", "htpasswd");
    await mkdir(join(home.path, "auth"));
    for (const [user, password] of Object.entries(oldUsers)) {
      const flags = user === "olduser" ? ["-cbB"] : ["-bB"];
      await runCommand(htpasswd, [...flags, htpasswdFile, user, password]);
    }
    expect(await readFile(htpasswdFile, "utf8")).toMatch(/^olduser:\$2y\$/);

    // registry:2 with htpasswd users over plain HTTP, as the operators in the seeds ran it.
    registry = await startDockerRegistry({
      root: join(home.path, "data"),
      auth: { htpasswd: { realm: "basic-realm", path: htpasswdFile } },
    });
    oldPort = Number(registry.hostPort.split(":")[1]);
    for (const name of ["team/app:v1", "library/base:latest", "library/base:1.2"]) {
      const image = await buildDockerSchema2Image(join(home.path, "images", name.replace(/\W/g, "-")));
      // Only this plain-HTTP registry:2 on loopback, which the migration replaces, is reached without TLS.
      await skopeo([
        "copy",
        "--retry-times",
        "0",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        `olduser:${oldUsers.olduser}`,
        image.reference,
        `docker://${registry.hostPort}/${name}`,
      ]);
      images.push([name, image]);
    }

    const out = join(home.path, "portcullis.yaml");
    const result = await runPortcullis([
      "migrate",
      "--from",
      registry.configPath,
      "--out",
      out,
      "--certs",
      join(home.path, "certs"),
    ]);
    expect(result.code, result.stderr).toBe(0);
    migrated = { stdout: result.stdout, config: parseYaml(await readFile(out, "utf8")) as Record<string, unknown> };
    await registry.stop();
    registry = undefined;
    serve = await startPortcullisServe({ home: home.path, args: ["--config", out] });
  });

  afterAll(async () => {
    await serve?.stop();
    await registry?.stop();
    await home?.stop();
  });

  it("serves registry:2's storage root in place, on registry:2's port", () => {
    expect(migrated.config.data).toBe(join(home.path, "data"));
    expect(migrated.config.listen).toBe(`127.0.0.1:${oldPort}`);
    expect(migrated.stdout).toContain(`serves ${join(home.path, "data")} in place`);
    expect(migrated.stdout).toContain("imported 2 users");
  });

  it("says what changes for clients: the CA install line, and insecure-registries going away", () => {
    expect(migrated.stdout).toMatch(/curl -fsSkg https:\/\/\S+\/ca\/install\.sh/);
    expect(migrated.stdout).toContain("remove this registry from insecure-registries");
    expect(migrated.stdout).toContain("port " + oldPort + " is in use (registry:2 still running?)");
  });

  it("lets skopeo pull every image over TLS with each old user's password", async () => {
    const certDir = await writeCertDir(join(home.path, "client-certs"), serve.caPem);
    for (const [user, password] of Object.entries(oldUsers)) {
      for (const [name, image] of images) {
        const copy = join(home.path, "pulled", user, name.replace(/\W/g, "-"));
        await mkdir(dirname(copy), { recursive: true });
        await copyOverTls(`docker://127.0.0.1:${serve.port}/${name}`, `dir:${copy}`, {
          certDir,
          creds: `${user}:${password}`,
        });
        expect(contentSummary(await readDirCopy(copy)), `${name} as ${user}`).toEqual(contentSummary(image));
      }
    }
  });

  it("refuses a wrong password for an imported user", async () => {
    const certDir = join(home.path, "client-certs");
    await expect(
      copyOverTls(`docker://127.0.0.1:${serve.port}/team/app:v1`, `dir:${join(home.path, "refused")}`, {
        certDir,
        creds: "olduser:not-the-password",
      }),
    ).rejects.toThrow(/unauthorized|authentication required|401/i);
  });
});
