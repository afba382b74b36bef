import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeContainersClientConfig } from "../support/containers-client.js";
import { CommandError } from "../support/command.js";
import { startContainerd, type Containerd } from "../support/containerd.js";
import { buildDockerSchema2Image, sha256, type BuiltImage } from "../support/images.js";
import { expectedHostsToml, installForClientRoot } from "../support/install-script.js";
import { portcullisUser } from "../support/portcullis-cli.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { grantedActions, hasRequest, logMark, requestsLogged, tokensIssued } from "../support/serve-log.js";
import { copyOverTls, inspectRawOverTls, type TlsClientOptions } from "../support/skopeo.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

describe("containerd's ctr against portcullis serve: POST /token grant_type=password first, GET as the fallback", () => {
  let work: TempDir;
  let serve: PortcullisServe;
  let containerd: Containerd;
  /** 127.0.0.1:PORT, the registry's name in image references and in certs.d */
  let registry: string;
  /** containerd's certs.d, as the install script wrote it under a root of the test's own */
  let hostsDir: string;
  /** skopeo's config, with the podman/skopeo cert dir for the registry from the same install */
  let client: TlsClientOptions;
  let image: BuiltImage;
  const user = "casey";
  const password = randomBytes(12).toString("base64url");

  beforeAll(async () => {
    requireTool("containerd", "containerd");
    requireTool("ctr", "containerd");
    requireTool("skopeo", "skopeo");
    requireTool("curl", "curl");
    work = await makeTempDir("token-flows-containerd-");
    serve = await startPortcullisServe({ env: { PORTCULLIS_LOG_LEVEL: "info" } });
    registry = `127.0.0.1:${serve.port}`;
    await portcullisUser(serve, "add", user, { password });

    const install = await installForClientRoot(registry, work.path);
    hostsDir = install.hostsDir;
    const { policy, env } = await writeContainersClientConfig(work.path);
    client = { certDir: install.certDir, creds: `${user}:${password}`, policy, env };
    image = await buildDockerSchema2Image(join(work.path, "image"), { layerSizes: [256 * 1024, 8 * 1024] });
    await copyOverTls(image.reference, `docker://${registry}/team/app:v1`, client);

    containerd = await startContainerd();
  });

  afterAll(async () => {
    await containerd?.stop();
    await serve?.stop();
    if (serve) await removeTempDir(serve.home);
    await work?.stop();
  });

  /** `ctr images VERB --hosts-dir DIR --user U:P REF`: TLS trust comes only from the installed hosts.toml. */
  function ctrWithCredentials(verb: "pull" | "push", reference: string, credentials = `${user}:${password}`) {
    return containerd.ctr(["images", verb, "--hosts-dir", hostsDir, "--user", credentials, reference]);
  }

  /** The digest of the manifest `reference` names, as the gateway serves it (skopeo, verifying TLS). */
  async function servedDigest(reference: string): Promise<string> {
    const { stdout } = await inspectRawOverTls(`docker://${reference}`, client);
    return sha256(stdout);
  }

  it("reads a hosts.toml from the install script that trusts ca.crt beside it by a relative path", async () => {
    const hostsToml = await readFile(join(hostsDir, registry, "hosts.toml"), "utf8");

    expect(hostsToml).toBe(expectedHostsToml(registry));
    expect(hostsToml).toContain('ca = "ca.crt"');
    expect(await readFile(join(hostsDir, registry, "ca.crt"), "utf8")).toBe(serve.caPem);
  });

  it("pulls over TLS with a token from POST /token grant_type=password, never falling back to GET", async () => {
    const reference = `${registry}/team/app:v1`;
    const mark = await logMark(serve.output);

    await ctrWithCredentials("pull", reference);

    const { stdout } = await containerd.ctr(["images", "ls", "--quiet"]);
    expect(stdout.split("\n")).toContain(reference);
    const { stdout: listed } = await containerd.ctr(["images", "ls"]);
    expect(listed).toContain(image.descriptor.digest);
    const logged = await mark.since();
    const issued = tokensIssued(logged);
    expect(issued.length).toBeGreaterThan(0);
    expect(issued.map((token) => [token.grant, token.subject])).toEqual(issued.map(() => ["password", user]));
    expect(grantedActions(issued, "team/app")).toEqual(["pull"]);
    const tokenRequests = requestsLogged(logged).filter((request) => request.path === "/token");
    expect(tokenRequests).toEqual(tokenRequests.map(() => expect.objectContaining({ method: "POST", status: 200 })));
  });

  it("pushes to another repository with a token from POST /token grant_type=password, and the gateway serves the same manifest", async () => {
    const reference = `${registry}/team/ctr:v1`;
    await containerd.ctr(["images", "tag", `${registry}/team/app:v1`, reference]);
    const mark = await logMark(serve.output);

    await ctrWithCredentials("push", reference);

    const issued = tokensIssued(await mark.since());
    expect(issued.length).toBeGreaterThan(0);
    expect(issued.map((token) => [token.grant, token.subject])).toEqual(issued.map(() => ["password", user]));
    expect(grantedActions(issued, "team/ctr")).toEqual(["pull", "push"]);
    expect(await servedDigest(reference)).toBe(image.descriptor.digest);
  });

  it("fails to pull with a wrong password after the POST password grant and then the GET fallback are both refused", async () => {
    const mark = await logMark(serve.output);

    const failure = await ctrWithCredentials("pull", `${registry}/team/app:v1`, `${user}:wrong-${password}`).catch(
      (error: unknown) => error,
    );

    expect(failure).toBeInstanceOf(CommandError);
    expect((failure as CommandError).stderr).toContain(
      "failed to fetch oauth token: unexpected status: 401 Unauthorized",
    );
    const logged = await mark.since(hasRequest("GET", "/token", 401));
    expect(tokensIssued(logged)).toEqual([]);
    const tokenRequests = requestsLogged(logged)
      .filter((request) => request.path === "/token")
      .map((request) => [request.method, request.status]);
    expect(tokenRequests.slice(0, 2)).toEqual([
      ["POST", 401],
      ["GET", 401],
    ]);
  });
});
