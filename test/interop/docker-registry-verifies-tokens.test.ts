import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCommand } from "../support/command.js";
import { startDockerRegistry, type DockerRegistry } from "../support/docker-registry.js";
import { httpsRequest } from "../support/https-client.js";
import { MEDIA_TYPES, buildDockerSchema2Image, contentSummary, type BuiltImage } from "../support/images.js";
import { portcullisUser } from "../support/portcullis-cli.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { fetchToken } from "../support/registry-token.js";
import { grantedActions, logMark, tokensIssued } from "../support/serve-log.js";
import { readDirCopy, skopeo } from "../support/skopeo.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

/**
 * A server certificate for 127.0.0.1 signed by the gateway's own CA (`certs/ca.crt` and `ca.key`), so one
 * CA in one cert dir lets skopeo verify both docker-registry and the token realm it is sent to.
 */
async function certificateFromGatewayCa(certsDir: string, dir: string): Promise<{ certificate: string; key: string }> {
  const openssl = requireTool("openssl", "openssl");
  await mkdir(dir, { recursive: true });
  const key = join(dir, "registry.key");
  const csr = join(dir, "registry.csr");
  const certificate = join(dir, "registry.crt");
  const extensions = join(dir, "registry.ext");
  await writeFile(
    extensions,
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
  );
  await runCommand(openssl, [
    "req",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    key,
    "-out",
    csr,
    "-subj",
    "/CN=docker-registry under test",
  ]);
  await runCommand(openssl, [
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    join(certsDir, "ca.crt"),
    "-CAkey",
    join(certsDir, "ca.key"),
    "-set_serial",
    `0x${randomBytes(8).toString("hex")}`,
    "-days",
    "2",
    "-extfile",
    extensions,
    "-out",
    certificate,
  ]);
  return { certificate, key };
}

describe("a stock docker-registry (distribution 2.8) with auth.token pointing at portcullis serve", () => {
  let work: TempDir;
  let serve: PortcullisServe;
  let registry: DockerRegistry;
  /** One directory holding ca.crt = the gateway's CA, for docker-registry's TLS and the token realm alike. */
  let certDir: string;
  let skopeoEnv: NodeJS.ProcessEnv;
  let policy: string;
  let image: BuiltImage;
  const user = "frank";
  const password = randomBytes(12).toString("base64url");

  beforeAll(async () => {
    requireTool("docker-registry", "docker-registry");
    requireTool("skopeo", "skopeo");
    requireTool("openssl", "openssl");
    work = await makeTempDir("docker-registry-verifies-tokens-");
    serve = await startPortcullisServe({ env: { PORTCULLIS_LOG_LEVEL: "info" } });
    await portcullisUser(serve, "add", user, { password });
    registry = await startDockerRegistry({
      auth: {
        token: {
          realm: `${serve.url}/token`,
          service: "portcullis",
          issuer: "portcullis",
          rootcertbundle: join(serve.certsDir, "ca.crt"),
        },
      },
      tls: { ...(await certificateFromGatewayCa(serve.certsDir, join(work.path, "tls"))), caPem: serve.caPem },
    });
    certDir = join(work.path, "cert-dir");
    await mkdir(certDir);
    await writeFile(join(certDir, "ca.crt"), serve.caPem);
    const registriesConf = join(work.path, "registries.conf");
    await writeFile(registriesConf, "unqualified-search-registries = []\n");
    policy = join(work.path, "policy.json");
    await writeFile(policy, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
    skopeoEnv = { ...process.env, CONTAINERS_REGISTRIES_CONF: registriesConf };
    image = await buildDockerSchema2Image(join(work.path, "image"), { layerSizes: [512 * 1024, 16 * 1024] });
  });

  afterAll(async () => {
    await registry?.stop();
    await serve?.stop();
    if (serve) await removeTempDir(serve.home);
    await work?.stop();
  });

  /** skopeo copy keeping digests, trusting only the gateway's CA (for docker-registry and the realm alike). */
  function skopeoCopy(source: string, destination: string) {
    const side = source.startsWith("docker://") ? "src" : "dest";
    return skopeo(
      [
        "--policy",
        policy,
        "copy",
        "--retry-times",
        "0",
        "--preserve-digests",
        `--${side}-cert-dir`,
        certDir,
        `--${side}-creds`,
        `${user}:${password}`,
        source,
        destination,
      ],
      { env: skopeoEnv },
    );
  }

  function token(scopes: string[]): Promise<string> {
    return fetchToken(serve.url, serve.caPem, user, password, scopes);
  }

  function getManifest(repository: string, reference: string, bearer: string) {
    return httpsRequest(`${registry.url}/v2/${repository}/manifests/${reference}`, {
      ca: serve.caPem,
      headers: { Authorization: `Bearer ${bearer}`, Accept: MEDIA_TYPES.dockerManifest },
    });
  }

  it("sends an unauthenticated client to the gateway's /token with service portcullis", async () => {
    const res = await httpsRequest(`${registry.url}/v2/`, { ca: serve.caPem });

    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe(`Bearer realm="${serve.url}/token",service="portcullis"`);
  });

  it("accepts a push by skopeo whose token came from the gateway", async () => {
    const mark = await logMark(serve.output);

    await skopeoCopy(image.reference, `docker://${registry.hostPort}/team/app:v1`);

    const issued = tokensIssued(await mark.since());
    expect(issued.map((entry) => [entry.grant, entry.subject])).toEqual(issued.map(() => ["basic", user]));
    expect(grantedActions(issued, "team/app")).toEqual(["pull", "push"]);
  });

  it("serves the image back to skopeo, byte-identical, with a pull token from the gateway", async () => {
    const back = join(work.path, "back");
    const mark = await logMark(serve.output);

    await skopeoCopy(`docker://${registry.hostPort}/team/app:v1`, `dir:${back}`);

    expect(contentSummary(await readDirCopy(back))).toEqual(contentSummary(image));
    expect(grantedActions(tokensIssued(await mark.since()), "team/app")).toEqual(["pull"]);
  });

  it("accepts a token for repository:team/app:pull on a manifest GET", async () => {
    const res = await getManifest("team/app", "v1", await token(["repository:team/app:pull"]));

    expect(res.status).toBe(200);
    expect(res.headers["docker-content-digest"]).toBe(image.descriptor.digest);
  });

  it("refuses a token for repository:other:pull on team/app with 401 insufficient_scope", async () => {
    const res = await getManifest("team/app", "v1", await token(["repository:other:pull"]));

    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain('error="insufficient_scope"');
    expect(res.headers["www-authenticate"]).toContain('scope="repository:team/app:pull"');
  });

  it("refuses a pull-only token for starting an upload to team/app with 401 insufficient_scope", async () => {
    const res = await httpsRequest(`${registry.url}/v2/team/app/blobs/uploads/`, {
      method: "POST",
      ca: serve.caPem,
      headers: { Authorization: `Bearer ${await token(["repository:team/app:pull"])}` },
    });

    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain('error="insufficient_scope"');
  });

  it("refuses a login token with empty access on team/app", async () => {
    const res = await getManifest("team/app", "v1", await token([]));

    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain('error="insufficient_scope"');
  });
});
