import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { CommandError } from "../support/command.js";
import { writeContainersClientConfig, type ContainersClientConfig } from "../support/containers-client.js";
import { buildDockerSchema2Image, buildRootfsTar, sha256 } from "../support/images.js";
import { installForClientRoot } from "../support/install-script.js";
import { createPodman, type Podman } from "../support/podman.js";
import { portcullisUser } from "../support/portcullis-cli.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { grantedActions, hasRequest, logMark, requestsLogged, tokensIssued } from "../support/serve-log.js";
import { copyOverTls, inspectRawOverTls } from "../support/skopeo.js";
import { startSlapd, type Slapd } from "../support/slapd.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

interface AuthFile {
  auths?: Record<string, { auth?: string }>;
}

interface Account {
  /** How the gateway knows the user: the `source` of its "token issued" lines. */
  source: "htpasswd" | "ldap";
  user: string;
  password: string;
  repository: string;
}

// Not PORTCULLIS_*: the config loader reads those as overrides of config keys.
const BIND_PASSWORD_ENV = "TEST_LDAP_SERVICE_PASSWORD";

describe("podman and skopeo against portcullis serve: GET /token with Basic auth, htpasswd and LDAP users, over TLS", () => {
  let work: TempDir;
  let slapd: Slapd;
  let serve: PortcullisServe;
  let podman: Podman;
  /** 127.0.0.1:PORT, the registry's name in image references and in certs.d */
  let registry: string;
  /** podman/skopeo's cert dir for the registry, as the install script wrote it under a root of the test's own */
  let certDir: string;
  let authFile: string;
  /** skopeo's registries.conf (the same podman reads) and signature policy */
  let clientConfig: ContainersClientConfig;
  const htpasswdUser = { user: "erin", password: randomBytes(12).toString("base64url") };

  beforeAll(async () => {
    requireTool("podman", "podman");
    requireTool("skopeo", "skopeo");
    requireTool("slapd", "slapd");
    requireTool("curl", "curl");
    work = await makeTempDir("token-flows-podman-");
    slapd = await startSlapd();
    const config = join(work.path, "portcullis.yaml");
    await writeFile(
      config,
      stringify({
        auth: {
          ldap: {
            url: slapd.url,
            bindDn: slapd.serviceDn,
            bindPasswordEnv: BIND_PASSWORD_ENV,
            userBase: slapd.peopleDn,
            userFilter: "(&(objectClass=inetOrgPerson)(uid={username}))",
            groupAttribute: "memberOf",
          },
        },
      }),
    );
    serve = await startPortcullisServe({
      args: ["--config", config],
      env: { PORTCULLIS_LOG_LEVEL: "info", [BIND_PASSWORD_ENV]: slapd.servicePassword },
    });
    registry = `127.0.0.1:${serve.port}`;
    await portcullisUser(serve, "add", htpasswdUser.user, { password: htpasswdUser.password, config });

    ({ certDir } = await installForClientRoot(registry, work.path));
    authFile = join(work.path, "auth.json");

    clientConfig = await writeContainersClientConfig(work.path, { registry });
    podman = await createPodman({ registriesConf: clientConfig.registriesConf });
  });

  afterAll(async () => {
    await podman?.stop();
    await serve?.stop();
    if (serve) await removeTempDir(serve.home);
    await slapd?.stop();
    await work?.stop();
  });

  function account(source: Account["source"]): Account {
    if (source === "htpasswd") return { source, ...htpasswdUser, repository: "team/htpasswd" };
    const bob = slapd.users.bob;
    if (bob === undefined) throw new Error("the test directory has no user bob");
    return { source, user: "bob", password: bob.password, repository: "team/ldap" };
  }

  async function storedLogins(): Promise<string[]> {
    const file = JSON.parse(await readFile(authFile, "utf8")) as AuthFile;
    return Object.keys(file.auths ?? {});
  }

  function login(user: string, password: string) {
    return podman.podman(
      ["login", "--cert-dir", certDir, "--authfile", authFile, "--username", user, "--password-stdin", registry],
      { input: `${password}\n` },
    );
  }

  /** podman push or pull with the stored login (no --creds) and TLS trust from the installed cert dir. */
  function transfer(verb: "push" | "pull", reference: string) {
    return podman.podman([verb, "--cert-dir", certDir, "--authfile", authFile, reference]);
  }

  /** Every "token issued" line in `logged` came from a GET /token with Basic credentials of `who`. */
  function expectBasicGrantsOnly(logged: string, who: Account | { user: string; source: string }): void {
    const issued = tokensIssued(logged);
    expect(issued.length).toBeGreaterThan(0);
    expect(issued.map((token) => [token.grant, token.subject, token.source])).toEqual(
      issued.map(() => ["basic", who.user, who.source]),
    );
    const tokenRequests = requestsLogged(logged).filter((request) => request.path === "/token");
    expect(tokenRequests).toEqual(tokenRequests.map(() => expect.objectContaining({ method: "GET", status: 200 })));
  }

  describe.each(["htpasswd", "ldap"] as const)("with a %s user", (source) => {
    let reference: string;
    let imageId: string;

    beforeAll(async () => {
      const rootfs = await buildRootfsTar(join(work.path, `${source}-rootfs.tar`));
      reference = `${registry}/${account(source).repository}:v1`;
      imageId = (await podman.podman(["import", rootfs.path, reference])).stdout.trim().replace(/^sha256:/, "");
    });

    it("logs in over TLS with GET /token and Basic auth, and stores the login", async () => {
      const { user, password } = account(source);
      const mark = await logMark(serve.output);

      const { stdout } = await login(user, password);

      expect(stdout).toContain("Login Succeeded!");
      expect(await storedLogins()).toEqual([registry]);
      expectBasicGrantsOnly(await mark.since(), account(source));
    });

    it("pushes with the stored login, getting a push token by GET /token with Basic auth", async () => {
      const mark = await logMark(serve.output);

      await transfer("push", reference);

      const logged = await mark.since();
      expectBasicGrantsOnly(logged, account(source));
      expect(grantedActions(tokensIssued(logged), account(source).repository)).toEqual(["pull", "push"]);
    });

    it("pulls the image back after removing it locally, with the same image id", async () => {
      await podman.podman(["rmi", reference]);
      await expect(podman.podman(["image", "exists", reference])).rejects.toThrow();
      const mark = await logMark(serve.output);

      await transfer("pull", reference);

      const { stdout } = await podman.podman(["image", "inspect", "--format", "{{.Id}}", reference]);
      expect(stdout.trim()).toBe(imageId);
      const logged = await mark.since();
      expectBasicGrantsOnly(logged, account(source));
      expect(grantedActions(tokensIssued(logged), account(source).repository)).toEqual(["pull"]);
    });

    it("logs out, after which a pull without credentials is refused", async () => {
      await podman.podman(["logout", "--authfile", authFile, registry]);

      expect(await storedLogins()).toEqual([]);
      const failure = await transfer("pull", reference).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(CommandError);
      expect((failure as CommandError).stderr).toContain("unauthorized: authentication required");
    });

    it("reports unauthorized for a wrong password, exits non-zero and stores nothing", async () => {
      const { user, password } = account(source);
      const mark = await logMark(serve.output);

      const failure = await login(user, `not-${password}`).catch((error: unknown) => error);

      expect(failure).toBeInstanceOf(CommandError);
      expect((failure as CommandError).exitCode).not.toBe(0);
      expect((failure as CommandError).stderr).toContain(`logging into "${registry}": invalid username/password`);
      expect(await storedLogins()).toEqual([]);
      const logged = await mark.since(hasRequest("GET", "/token", 401));
      expect(tokensIssued(logged)).toEqual([]);
      expect(requestsLogged(logged)).toContainEqual(
        expect.objectContaining({ method: "GET", path: "/token", status: 401 }),
      );
    });
  });

  it("lets skopeo push and inspect with --creds, each session getting its tokens by GET /token with Basic auth", async () => {
    const who = { user: htpasswdUser.user, source: "htpasswd" };
    const client = { ...clientConfig, certDir, creds: `${htpasswdUser.user}:${htpasswdUser.password}` };
    const image = await buildDockerSchema2Image(join(work.path, "skopeo-image"), { layerSizes: [64 * 1024] });
    const destination = `docker://${registry}/team/skopeo:v1`;
    const mark = await logMark(serve.output);

    await copyOverTls(image.reference, destination, client);
    const { stdout } = await inspectRawOverTls(destination, client);

    expect(sha256(stdout)).toBe(image.descriptor.digest);
    const logged = await mark.since();
    expectBasicGrantsOnly(logged, who);
    expect(grantedActions(tokensIssued(logged), "team/skopeo")).toEqual(["pull", "push"]);
  });
});
