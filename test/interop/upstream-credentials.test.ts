import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { CommandError } from "../support/command.js";
import { writeCertDir, writeContainersClientConfig } from "../support/containers-client.js";
import { startDockerRegistry, type DockerRegistry } from "../support/docker-registry.js";
import { writeHtpasswdFile } from "../support/htpasswd-file.js";
import { buildDockerSchema2Image, buildRootfsTar, contentSummary, type BuiltImage } from "../support/images.js";
import { installForClientRoot } from "../support/install-script.js";
import { createPodman, type Podman } from "../support/podman.js";
import { portcullisUser } from "../support/portcullis-cli.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { httpsRequest } from "../support/https-client.js";
import { fetchToken } from "../support/registry-token.js";
import { tokensIssued } from "../support/serve-log.js";
import { copyOverTls, readDirCopy, type TlsClientOptions } from "../support/skopeo.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";
import { issueServerCertificate } from "../support/test-ca.js";
import { requireTool } from "../support/tools.js";

type UpstreamKind = "htpasswd over plain HTTP" | "token auth over its own TLS";

/** One `portcullis serve --config` fronting one upstream, with the clients that use it. */
interface Front {
  serve: PortcullisServe;
  upstream: DockerRegistry;
  /** 127.0.0.1:PORT of the front, as image references name it */
  registry: string;
  /** skopeo trusting only the front's CA */
  skopeo: (creds: string) => TlsClientOptions;
  /** podman's cert dir for the front, as the install script wrote it under a root of the test's own */
  certDir: string;
}

interface Account {
  name: string;
  password: string;
}

/**
 * The user names docker-registry's log says a request was made as (`auth.user.name=…` on its lines): for
 * htpasswd, the Basic credentials; for token auth, the subject of the token.
 */
function upstreamUsers(log: string): string[] {
  return [...new Set([...log.matchAll(/auth\.user\.name="?([^"\s]+)"?/g)].map((match) => match[1] as string))];
}

// The gateway signs in to the registry behind it with its own account: Basic, or a token it fetches itself
// from the upstream's token service (here a second Portcullis), trusting the CA the config names. Clients only
// ever sign in to the gateway, which applies its own users and policies.
describe("portcullis serve in front of a docker-registry that wants credentials of its own", () => {
  let work: TempDir;
  /** The token service of the token-auth upstream, with the gateway's account on it. */
  let tokenService: PortcullisServe;
  let podman: Podman;
  let image: BuiltImage;
  const fronts = new Map<UpstreamKind, Front>();
  /** Fronts started by single tests, stopped at the end. */
  const extraFronts: Front[] = [];
  const gateway: Account = { name: "gateway", password: randomBytes(12).toString("base64url") };
  /** A second account of the gateway's on the token service, which may only pull there. */
  const reader: Account = { name: "reader", password: randomBytes(12).toString("base64url") };
  const alice: Account = { name: "alice", password: randomBytes(12).toString("base64url") };
  const bob: Account = { name: "bob", password: randomBytes(12).toString("base64url") };

  async function startFront(
    label: string,
    upstream: DockerRegistry,
    options: { ca?: string; account?: Account } = {},
  ): Promise<Front> {
    const { ca, account = gateway } = options;
    const dir = join(work.path, label);
    const passwordFile = join(dir, "gateway-password");
    const config = join(dir, "portcullis.yaml");
    await mkdir(dir, { recursive: true });
    await writeFile(passwordFile, `${account.password}\n`, { mode: 0o600 });
    await writeFile(
      config,
      stringify({
        upstream: "origin",
        upstreams: {
          origin: { url: upstream.url, username: account.name, passwordFile, ...(ca ? { ca } : {}) },
        },
        policies: [
          { account: "admin", repository: "*", actions: ["*"] },
          { account: alice.name, repository: "team/*", actions: ["pull", "push"] },
          { account: bob.name, repository: "team/*", actions: ["pull"] },
        ],
      }),
    );
    const serve = await startPortcullisServe({ args: ["--config", config] });
    for (const user of [alice, bob]) await portcullisUser(serve, "add", user.name, { password: user.password, config });
    const registry = `127.0.0.1:${serve.port}`;
    const { policy, env } = await writeContainersClientConfig(dir);
    const skopeoCertDir = await writeCertDir(join(dir, "skopeo-certs"), serve.caPem);
    const { certDir } = await installForClientRoot(registry, dir);
    return {
      serve,
      upstream,
      registry,
      skopeo: (creds) => ({ certDir: skopeoCertDir, creds, policy, env }),
      certDir,
    };
  }

  beforeAll(async () => {
    requireTool("docker-registry", "docker-registry");
    requireTool("skopeo", "skopeo");
    requireTool("podman", "podman");
    requireTool("openssl", "openssl");
    work = await makeTempDir("upstream-credentials-");

    const htpasswd = await writeHtpasswdFile(join(work.path, "upstream.htpasswd"), {
      [gateway.name]: gateway.password,
    });
    const basicUpstream = await startDockerRegistry({
      auth: { htpasswd: { realm: "upstream", path: htpasswd } },
    });

    const tokenServiceConfig = join(work.path, "token-service.yaml");
    await writeFile(
      tokenServiceConfig,
      stringify({
        policies: [
          { account: gateway.name, repository: "*", actions: ["*"] },
          { account: reader.name, repository: "*", actions: ["pull"] },
        ],
      }),
    );
    tokenService = await startPortcullisServe({
      args: ["--config", tokenServiceConfig],
      env: { PORTCULLIS_LOG_LEVEL: "info" },
    });
    for (const account of [gateway, reader])
      await portcullisUser(tokenService, "add", account.name, {
        password: account.password,
        config: tokenServiceConfig,
      });
    const caFile = join(tokenService.certsDir, "ca.crt");
    const tls = await issueServerCertificate(
      join(work.path, "upstream-tls"),
      { certFile: caFile, keyFile: join(tokenService.certsDir, "ca.key") },
      "token-auth upstream",
    );
    const tokenUpstream = await startDockerRegistry({
      auth: {
        token: {
          realm: `${tokenService.url}/token`,
          service: "portcullis",
          issuer: "portcullis",
          rootcertbundle: caFile,
        },
      },
      tls: { certificate: tls.certFile, key: tls.keyFile, caPem: tokenService.caPem },
    });

    fronts.set("htpasswd over plain HTTP", await startFront("htpasswd", basicUpstream));
    fronts.set("token auth over its own TLS", await startFront("token", tokenUpstream, { ca: caFile }));
    podman = await createPodman();
    image = await buildDockerSchema2Image(join(work.path, "image"), { layerSizes: [700 * 1024, 20 * 1024] });
  });

  afterAll(async () => {
    await podman?.stop();
    for (const front of fronts.values()) {
      await front.serve.stop();
      await removeTempDir(front.serve.home);
      await front.upstream.stop();
    }
    for (const front of extraFronts) {
      await front.serve.stop();
      await removeTempDir(front.serve.home);
    }
    await tokenService?.stop();
    if (tokenService) await removeTempDir(tokenService.home);
    await work?.stop();
  });

  describe.each(["htpasswd over plain HTTP", "token auth over its own TLS"] as const)("an upstream with %s", (kind) => {
    const front = () => fronts.get(kind) as Front;
    const creds = (account: Account) => `${account.name}:${account.password}`;

    it("takes a push by skopeo as a Portcullis user, stores it upstream, and serves it back byte-identical", async () => {
      const { registry, skopeo } = front();

      await copyOverTls(image.reference, `docker://${registry}/team/app:v1`, skopeo(creds(alice)));
      const back = join(work.path, `${kind.split(" ")[0]}-skopeo-back`);
      await copyOverTls(`docker://${registry}/team/app:v1`, `dir:${back}`, skopeo(creds(bob)));

      expect(contentSummary(await readDirCopy(back))).toEqual(contentSummary(image));
      expect(await front().upstream.log()).toMatch(/"PUT \/v2\/team\/app\/manifests\/v1 HTTP\/1\.1" 201/);
    });

    it("takes a push and a pull by podman logged in as a Portcullis user, with the same image id", async () => {
      const { registry, certDir } = front();
      const authFile = join(work.path, `${kind.split(" ")[0]}-podman-auth.json`);
      const reference = `${registry}/team/podman:v1`;
      const rootfs = await buildRootfsTar(join(work.path, `${kind.split(" ")[0]}-rootfs.tar`));
      const imageId = (await podman.podman(["import", rootfs.path, reference])).stdout.trim().replace(/^sha256:/, "");

      await podman.podman(
        [
          "login",
          "--cert-dir",
          certDir,
          "--authfile",
          authFile,
          "--username",
          alice.name,
          "--password-stdin",
          registry,
        ],
        { input: `${alice.password}\n` },
      );
      await podman.podman(["push", "--cert-dir", certDir, "--authfile", authFile, reference]);
      await podman.podman(["rmi", reference]);
      await podman.podman(["pull", "--cert-dir", certDir, "--authfile", authFile, reference]);

      const { stdout } = await podman.podman(["image", "inspect", "--format", "{{.Id}}", reference]);
      expect(stdout.trim()).toBe(imageId);
    });

    it("applies its own policies: a pull-only user cannot push, whatever the gateway's account upstream may do", async () => {
      const { registry, skopeo } = front();

      const failure = await copyOverTls(image.reference, `docker://${registry}/team/bob:v1`, skopeo(creds(bob))).catch(
        (error: unknown) => error,
      );

      expect(failure).toBeInstanceOf(CommandError);
      expect((failure as CommandError).stderr).toMatch(/denied|unauthorized/i);
      // bob may pull team/bob, so skopeo's blob checks (HEAD) pass through; nothing that writes does.
      expect(await front().upstream.log()).not.toMatch(/"(POST|PUT|PATCH) \/v2\/team\/bob\//);
    });

    it("refuses a client without a Portcullis login, before anything reaches the upstream", async () => {
      const { registry, skopeo } = front();
      const before = (await front().upstream.log()).length;

      const failure = await copyOverTls(`docker://${registry}/team/app:v1`, `dir:${join(work.path, "anon")}`, {
        ...skopeo(""),
        creds: undefined,
      }).catch((error: unknown) => error);

      expect(failure).toBeInstanceOf(CommandError);
      expect((await front().upstream.log()).slice(before)).not.toContain("/v2/team/app/");
    });

    it("shows the upstream only the gateway's account: its log names no other user", async () => {
      const users = upstreamUsers(await front().upstream.log());

      expect(users).toEqual([gateway.name]);
    });
  });

  it("answers 503 naming the upstream when the upstream refuses the gateway's account, and logs no password", async () => {
    const upstream = (fronts.get("htpasswd over plain HTTP") as Front).upstream;
    const password = `wrong-${randomBytes(12).toString("base64url")}`;
    const front = await startFront("wrong-password", upstream, { account: { name: gateway.name, password } });
    extraFronts.push(front);
    const { serve } = front;
    const token = await fetchToken(serve.url, serve.caPem, alice.name, alice.password, ["repository:team/app:pull"]);

    const res = await httpsRequest(`${serve.url}/v2/team/app/manifests/v1`, {
      ca: serve.caPem,
      headers: { Authorization: `Bearer ${token}` },
    });

    expect(res.status).toBe(503);
    expect(JSON.parse(res.body.toString("utf8"))).toEqual({
      errors: [{ code: "UNAVAILABLE", message: 'upstream "origin" refused the gateway\'s account; try again' }],
    });
    const logged = await serve.output();
    expect(logged).toMatch(
      /"upstream":"origin","scope":"repository:team\/app:pull","msg":"upstream \\"origin\\" refused the gateway's account"/,
    );
    expect(logged).not.toContain(password);
  });

  it("answers 403 DENIED when the upstream gives the gateway's account too little access, and pushes nothing", async () => {
    const { upstream } = fronts.get("token auth over its own TLS") as Front;
    const front = await startFront("reader", upstream, { ca: join(tokenService.certsDir, "ca.crt"), account: reader });
    extraFronts.push(front);

    await copyOverTls(`docker://${front.registry}/team/app:v1`, `dir:${join(work.path, "reader-back")}`, {
      ...front.skopeo(`${alice.name}:${alice.password}`),
    });
    const failure = await copyOverTls(
      image.reference,
      `docker://${front.registry}/team/reader:v1`,
      front.skopeo(`${alice.name}:${alice.password}`),
    ).catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(CommandError);
    // skopeo quotes the message, escaping its quotes.
    expect((failure as CommandError).stderr).toMatch(
      /denied: the gateway's account on upstream \\?"origin\\?" may not repository:team\/reader:pull,push/,
    );
    expect(await upstream.log()).not.toMatch(/"(PUT|PATCH) \/v2\/team\/reader\//);
  });

  it("gave the token-auth upstream's token service only the gateway's accounts, never a client's", async () => {
    const subjects = new Set(
      tokensIssued(await tokenService.output()).map((token) => `${token.grant}:${token.subject}`),
    );

    expect(subjects).toEqual(new Set(["basic:gateway", "basic:reader"]));
  });
});
