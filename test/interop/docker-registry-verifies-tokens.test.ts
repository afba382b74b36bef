import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeCertDir, writeContainersClientConfig } from "../support/containers-client.js";
import { startDockerRegistry, type DockerRegistry } from "../support/docker-registry.js";
import { httpsRequest } from "../support/https-client.js";
import { MEDIA_TYPES, buildDockerSchema2Image, contentSummary, type BuiltImage } from "../support/images.js";
import { portcullisUser } from "../support/portcullis-cli.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { fetchToken } from "../support/registry-token.js";
import { grantedActions, logMark, tokensIssued } from "../support/serve-log.js";
import { copyOverTls, readDirCopy, type TlsClientOptions } from "../support/skopeo.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";
import { issueServerCertificate } from "../support/test-ca.js";
import { requireTool } from "../support/tools.js";

describe("a stock docker-registry (distribution 2.8) with auth.token pointing at portcullis serve", () => {
  let work: TempDir;
  let serve: PortcullisServe;
  let registry: DockerRegistry;
  /** skopeo's cert dir (only the gateway's CA, for docker-registry's TLS and the token realm alike) and config. */
  let client: TlsClientOptions;
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
    // Signed by the gateway's own CA (`certs/ca.crt` and `ca.key`), so one CA in one cert dir lets skopeo
    // verify both docker-registry and the token realm it is sent to.
    const registryTls = await issueServerCertificate(
      join(work.path, "tls"),
      { certFile: join(serve.certsDir, "ca.crt"), keyFile: join(serve.certsDir, "ca.key") },
      "docker-registry under test",
    );
    registry = await startDockerRegistry({
      auth: {
        token: {
          realm: `${serve.url}/token`,
          service: "portcullis",
          issuer: "portcullis",
          rootcertbundle: join(serve.certsDir, "ca.crt"),
        },
      },
      tls: { certificate: registryTls.certFile, key: registryTls.keyFile, caPem: serve.caPem },
    });
    const { policy, env } = await writeContainersClientConfig(work.path);
    const certDir = await writeCertDir(join(work.path, "cert-dir"), serve.caPem);
    client = { certDir, creds: `${user}:${password}`, policy, env };
    image = await buildDockerSchema2Image(join(work.path, "image"), { layerSizes: [512 * 1024, 16 * 1024] });
  });

  afterAll(async () => {
    await registry?.stop();
    await serve?.stop();
    if (serve) await removeTempDir(serve.home);
    await work?.stop();
  });

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

    await copyOverTls(image.reference, `docker://${registry.hostPort}/team/app:v1`, client);

    const issued = tokensIssued(await mark.since());
    expect(issued.map((entry) => [entry.grant, entry.subject])).toEqual(issued.map(() => ["basic", user]));
    expect(grantedActions(issued, "team/app")).toEqual(["pull", "push"]);
  });

  it("serves the image back to skopeo, byte-identical, with a pull token from the gateway", async () => {
    const back = join(work.path, "back");
    const mark = await logMark(serve.output);

    await copyOverTls(`docker://${registry.hostPort}/team/app:v1`, `dir:${back}`, client);

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
