import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CommandError } from "../support/command.js";
import { startDockerd, type Dockerd } from "../support/dockerd.js";
import { httpsRequest } from "../support/https-client.js";
import { buildRootfsTar } from "../support/images.js";
import { portcullisUser } from "../support/portcullis-cli.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { grantedActions, hasRequest, logMark, requestsLogged, tokensIssued } from "../support/serve-log.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; identitytoken?: string }>;
  credsStore?: string;
}

// docker treats every registry in 127.0.0.0/8 as insecure and skips certificate checks there, but it still
// dials HTTPS first, and the gateway speaks nothing else: every request in the server's log came over TLS.
describe("docker's token flow against portcullis serve: login with offline_token, then refresh grants", () => {
  let work: TempDir;
  let serve: PortcullisServe;
  let dockerd: Dockerd;
  /** 127.0.0.1:PORT, the name docker gives the registry (and its key in config.json) */
  let registry: string;
  let repository: string;
  let imageId: string;
  const user = "dana";
  const password = randomBytes(12).toString("base64url");
  const newPassword = randomBytes(12).toString("base64url");
  let identityToken: string | undefined;

  beforeAll(async () => {
    requireTool("dockerd", "docker.io");
    work = await makeTempDir("token-flows-docker-");
    serve = await startPortcullisServe({ env: { PORTCULLIS_LOG_LEVEL: "info" } });
    registry = `127.0.0.1:${serve.port}`;
    repository = `${registry}/team/app`;
    await portcullisUser(serve, "add", user, { password });
    dockerd = await startDockerd();
    const rootfs = await buildRootfsTar(join(work.path, "rootfs.tar"), 1024 * 1024);
    imageId = (await dockerd.docker(["import", rootfs.path, `${repository}:v1`])).stdout.trim();
  });

  afterAll(async () => {
    await dockerd?.stop();
    await serve?.stop();
    if (serve) await removeTempDir(serve.home);
    await work?.stop();
  });

  async function dockerConfig(): Promise<DockerConfigFile> {
    return JSON.parse(await readFile(join(dockerd.configDir, "config.json"), "utf8")) as DockerConfigFile;
  }

  function storedIdentityToken(): string {
    if (identityToken === undefined) throw new Error("the login test stored no identity token");
    return identityToken;
  }

  function refreshGrant(refreshToken: string, scope: string) {
    return httpsRequest(`${serve.url}/token`, {
      ca: serve.caPem,
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: refreshToken,
        service: "portcullis",
        client_id: "docker",
        scope,
      }).toString(),
    });
  }

  it("stores a refresh token as the identity token in config.json after docker login, and not the password", async () => {
    const mark = await logMark(serve.output);

    await dockerd.login(registry, user, password);

    const raw = await readFile(join(dockerd.configDir, "config.json"), "utf8");
    const entry = (await dockerConfig()).auths?.[registry];
    expect(entry?.identitytoken).toMatch(/\S{20,}/);
    // With an identity token docker keeps only "USER:" in auth.
    expect(Buffer.from(entry?.auth ?? "", "base64").toString("utf8")).toBe(`${user}:`);
    expect(raw).not.toContain(password);
    expect(raw).not.toContain(Buffer.from(`${user}:${password}`).toString("base64"));
    identityToken = entry!.identitytoken!;

    const logged = await mark.since(hasRequest("GET", "/token", 200));
    expect(tokensIssued(logged)).toEqual([
      expect.objectContaining({ grant: "basic", subject: user, requested: [], granted: [] }),
    ]);
    expect(requestsLogged(logged)).toContainEqual(
      expect.objectContaining({ method: "GET", path: "/token", status: 200 }),
    );
  });

  it("pushes with tokens from POST /token grant_type=refresh_token, never sending the password again", async () => {
    const mark = await logMark(serve.output);

    const { stdout } = await dockerd.docker(["push", `${repository}:v1`]);

    expect(stdout).toMatch(/v1: digest: sha256:[0-9a-f]{64} size: \d+/);
    // The gateway speaks only TLS, so the manifest PUT it logged came over HTTPS.
    const logged = await mark.since(hasRequest("PUT", "/v2/team/app/manifests/v1", 201));
    expect(requestsLogged(logged)).toContainEqual(
      expect.objectContaining({ method: "PUT", path: "/v2/team/app/manifests/v1", status: 201 }),
    );
    const issued = tokensIssued(logged);
    expect(issued.length).toBeGreaterThan(0);
    expect(issued.map((token) => token.grant)).toEqual(issued.map(() => "refresh_token"));
    expect(issued.map((token) => token.subject)).toEqual(issued.map(() => user));
    expect(grantedActions(issued, "team/app")).toEqual(["pull", "push"]);
    const tokenRequests = requestsLogged(logged).filter((request) => request.path === "/token");
    expect(tokenRequests).toEqual(tokenRequests.map(() => expect.objectContaining({ method: "POST", status: 200 })));
  });

  it("pulls the image back with tokens from the same refresh grant", async () => {
    await dockerd.docker(["rmi", "--force", imageId]);
    const mark = await logMark(serve.output);

    await dockerd.docker(["pull", `${repository}:v1`]);

    const { stdout: id } = await dockerd.docker(["image", "inspect", "--format", "{{.Id}}", `${repository}:v1`]);
    expect(id.trim()).toBe(imageId);
    const issued = tokensIssued(await mark.since());
    expect(issued.length).toBeGreaterThan(0);
    expect(issued.map((token) => token.grant)).toEqual(issued.map(() => "refresh_token"));
    expect(grantedActions(issued, "team/app")).toEqual(["pull"]);
  });

  it("answers a refresh grant with the stored identity token by returning that same refresh token", async () => {
    const res = await refreshGrant(storedIdentityToken(), "repository:team/app:pull");

    expect(res.status).toBe(200);
    const body = JSON.parse(res.body.toString()) as { token: string; refresh_token?: string };
    expect(body.token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(body.refresh_token).toBe(storedIdentityToken());
  });

  it("refuses the stored refresh token, to docker and to a direct POST /token, once portcullis user passwd changed the password", async () => {
    await portcullisUser(serve, "passwd", user, { password: newPassword });

    const direct = await refreshGrant(storedIdentityToken(), "repository:team/app:pull");
    expect(direct.status).toBe(401);
    expect(JSON.parse(direct.body.toString())).toMatchObject({ error: "invalid_grant" });

    const mark = await logMark(serve.output);
    const push = await dockerd.docker(["push", `${repository}:v1`]).catch((error: unknown) => error);
    await dockerd.docker(["rmi", "--force", imageId]);
    const pull = await dockerd.docker(["pull", `${repository}:v1`]).catch((error: unknown) => error);

    expect(push).toBeInstanceOf(CommandError);
    expect((push as CommandError).stderr).toMatch(/unauthorized/i);
    expect(pull).toBeInstanceOf(CommandError);
    expect((pull as CommandError).stderr).toContain(
      `Head "https://${registry}/v2/team/app/manifests/v1": unauthorized`,
    );
    const logged = await mark.since(hasRequest("POST", "/token", 401));
    expect(tokensIssued(logged)).toEqual([]);
    expect(requestsLogged(logged)).toContainEqual(
      expect.objectContaining({ method: "POST", path: "/token", status: 401 }),
    );
    expect((await dockerConfig()).auths?.[registry]?.identitytoken).toBe(storedIdentityToken());
  });

  it("pulls again after docker login with the new password", async () => {
    await dockerd.login(registry, user, newPassword);

    await dockerd.docker(["pull", `${repository}:v1`]);

    const { stdout: id } = await dockerd.docker(["image", "inspect", "--format", "{{.Id}}", `${repository}:v1`]);
    expect(id.trim()).toBe(imageId);
    expect((await dockerConfig()).auths?.[registry]?.identitytoken).not.toBe(storedIdentityToken());
  });
});
