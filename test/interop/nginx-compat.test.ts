import { mkdir, readFile } from "node:fs/promises";
import type { IncomingHttpHeaders } from "node:http";
import { request } from "node:https";
import { join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCommand } from "../support/command.js";
import { writeCertDir } from "../support/containers-client.js";
import { buildDockerSchema2Image, contentSummary, sha256 } from "../support/images.js";
import { startNginx, type Nginx } from "../support/nginx.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { skopeo, readDirCopy } from "../support/skopeo.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

const examples = resolve(import.meta.dirname, "../../nginx-compat");
const nginxTemplate = join(examples, "portcullis-behind-nginx.conf");
const portcullisConfig = join(examples, "portcullis-behind-nginx.yaml");

// Linux routes all of 127.0.0.0/8 to the loopback interface, so a client may bind any of it as its source
// address. Portcullis then sees a peer that is local yet not the trusted proxy of the example config.
const untrustedLoopback = "127.0.0.2";

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function httpsRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer; ca: string; localAddress?: string },
): Promise<Answer> {
  return new Promise((resolvePromise, reject) => {
    const req = request(url, {
      method: options.method ?? "GET",
      headers: { "Content-Length": String(options.body?.length ?? 0), ...options.headers },
      ca: options.ca,
      localAddress: options.localAddress,
      agent: false,
    });
    req.once("error", reject);
    req.once("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.once("error", reject);
      res.once("end", () =>
        resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
    });
    req.end(options.body);
  });
}

/** An operator's own CA and a certificate for 127.0.0.1 issued by it, made with openssl: nginx's front. */
async function makeNginxCertificate(dir: string): Promise<{ cert: string; key: string; ca: string }> {
  const openssl = requireTool("openssl", "openssl");
  const files = { ca: join(dir, "ca.crt"), caKey: join(dir, "ca.key"), key: join(dir, "server.key") };
  const csr = join(dir, "server.csr");
  const cert = join(dir, "server.crt");
  await mkdir(dir, { recursive: true });
  await runCommand(openssl, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=nginx-compat test CA",
    "-keyout",
    files.caKey,
    "-out",
    files.ca,
  ]);
  await runCommand(openssl, [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout",
    files.key,
    "-out",
    csr,
  ]);
  await runCommand(openssl, [
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    files.ca,
    "-CAkey",
    files.caKey,
    "-CAcreateserial",
    "-days",
    "2",
    "-copy_extensions",
    "copy",
    "-out",
    cert,
  ]);
  return { cert, key: files.key, ca: files.ca };
}

/** How a request reaches a server: the CA to trust, the source address, headers a client adds itself. */
interface Via {
  ca: string;
  localAddress?: string;
  headers?: Record<string, string>;
}

/** What a client needs to push to a repository, and the token realm the gateway's challenge named. */
interface Access {
  authorization: Record<string, string>;
  realm?: string;
}

describe("Portcullis behind nginx, as configured by nginx-compat/", () => {
  let work: TempDir;
  let portcullis: PortcullisServe;
  let nginx: Nginx;
  let nginxCa: string;
  /** For skopeo: holds only nginx's CA, so nothing but nginx's certificate can satisfy it. */
  let certDir: string;
  /** The first user Portcullis made, when it has token authentication (`certs/admin-password`). */
  let admin: { user: string; password: string } | undefined;

  beforeAll(async () => {
    requireTool("skopeo", "skopeo");
    work = await makeTempDir("nginx-compat-");
    const front = await makeNginxCertificate(join(work.path, "nginx-tls"));
    nginxCa = await readFile(front.ca, "utf8");
    certDir = await writeCertDir(join(work.path, "client-certs"), nginxCa);

    portcullis = await startPortcullisServe({ args: ["--config", portcullisConfig] });
    const password = await readFile(join(portcullis.certsDir, "admin-password"), "utf8").catch(() => undefined);
    admin = password === undefined ? undefined : { user: "admin", password: password.trim() };
    nginx = await startNginx({
      template: nginxTemplate,
      values: {
        SERVER_NAME: "127.0.0.1",
        CERT: front.cert,
        KEY: front.key,
        UPSTREAM: `127.0.0.1:${portcullis.port}`,
        UPSTREAM_CA: join(portcullis.certsDir, "ca.crt"),
        UPSTREAM_NAME: "localhost",
      },
    });
  });

  afterAll(async () => {
    await nginx?.stop();
    await portcullis?.stop();
    if (portcullis) await removeTempDir(portcullis.home);
    await work?.stop();
  });

  /**
   * Asks `GET /v2/` the way the later requests will be sent; when the gateway challenges, gets a push token
   * for `repo` from `base`/token as the admin user.
   */
  async function access(base: string, repo: string, via: Via): Promise<Access> {
    const probe = await httpsRequest(`${base}/v2/`, via);
    if (probe.status === 200) return { authorization: {} };
    const challenge = probe.headers["www-authenticate"] ?? "";
    const realm = /realm="([^"]+)"/.exec(challenge)?.[1];
    const service = /service="([^"]+)"/.exec(challenge)?.[1];
    if (probe.status !== 401 || !realm || !service || !admin) {
      throw new Error(`GET ${base}/v2/ answered ${probe.status} (${challenge || "no challenge"}) ${probe.body}`);
    }
    const query = new URLSearchParams({ service, scope: `repository:${repo}:pull,push` });
    const basic = Buffer.from(`${admin.user}:${admin.password}`).toString("base64");
    const answer = await httpsRequest(`${base}/token?${query}`, {
      ca: via.ca,
      localAddress: via.localAddress,
      headers: { Authorization: `Basic ${basic}` },
    });
    if (answer.status !== 200) throw new Error(`GET ${base}/token answered ${answer.status}: ${answer.body}`);
    const { token } = JSON.parse(answer.body) as { token: string };
    return { authorization: { Authorization: `Bearer ${token}` }, realm };
  }

  async function startUpload(base: string, repo: string, via: Via) {
    const granted = await access(base, repo, via);
    const post = await httpsRequest(`${base}/v2/${repo}/blobs/uploads/`, {
      method: "POST",
      ca: via.ca,
      localAddress: via.localAddress,
      headers: { ...via.headers, ...granted.authorization },
    });
    return { post, ...granted };
  }

  /** Before token auth there is no challenge; with it, the realm must be on the same public URL as Location. */
  function expectRealmOn(granted: Pick<Access, "realm">, publicBase: string) {
    expect(granted.realm ?? `${publicBase}/token`).toBe(`${publicBase}/token`);
  }

  it("trusts only nginx's own address in the example config, not all of loopback", async () => {
    const config = parseYaml(await readFile(portcullisConfig, "utf8")) as { trustedProxies: string[] };

    expect(config.trustedProxies).toEqual(["127.0.0.1"]);
  });

  it("lets skopeo push an image through nginx and pull it back byte-identical, with TLS verification on", async () => {
    const image = await buildDockerSchema2Image(join(work.path, "image"), { layerSizes: [6 * 1024 * 1024, 16 * 1024] });
    const remote = `docker://127.0.0.1:${nginx.port}/nginx-compat/app:v1`;
    const copy = ["copy", "--retry-times", "0", "--preserve-digests"];
    const creds = (flag: string) => (admin ? [flag, `${admin.user}:${admin.password}`] : []);
    await skopeo([
      ...copy,
      "--dest-tls-verify=true",
      "--dest-cert-dir",
      certDir,
      ...creds("--dest-creds"),
      image.reference,
      remote,
    ]);
    const out = join(work.path, "pulled");
    await skopeo([
      ...copy,
      "--src-tls-verify=true",
      "--src-cert-dir",
      certDir,
      ...creds("--src-creds"),
      remote,
      `dir:${out}`,
    ]);

    expect(contentSummary(await readDirCopy(out))).toEqual(contentSummary(image));
  });

  it("answers every step of an upload through nginx with a Location on nginx's public URL", async () => {
    const repo = "nginx-compat/location";
    const uploads = `${nginx.url}/v2/${repo}/blobs/uploads/`;
    const content = Buffer.from("a blob pushed through nginx\n");
    const digest = sha256(content);

    const { post, authorization, ...granted } = await startUpload(nginx.url, repo, { ca: nginxCa });
    expectRealmOn(granted, nginx.url);
    expect(post.status).toBe(202);
    expect(post.headers.location).toMatch(new RegExp(`^${escape(uploads)}[^/]+`));

    const patch = await httpsRequest(post.headers.location!, {
      method: "PATCH",
      headers: { "Content-Type": "application/octet-stream", ...authorization },
      body: content,
      ca: nginxCa,
    });
    expect(patch.status).toBe(202);
    expect(patch.headers.location).toMatch(new RegExp(`^${escape(uploads)}[^/]+`));

    const putUrl = new URL(patch.headers.location!);
    putUrl.searchParams.set("digest", digest);
    const put = await httpsRequest(putUrl.toString(), { method: "PUT", headers: authorization, ca: nginxCa });
    expect(put.status).toBe(201);
    expect(put.headers.location).toBe(`${nginx.url}/v2/${repo}/blobs/${digest}`);
  });

  it("keeps Location on nginx's URL when a client sends nginx its own X-Forwarded-Host and -Proto", async () => {
    const { post, ...granted } = await startUpload(nginx.url, "nginx-compat/forged", {
      ca: nginxCa,
      headers: { "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http" },
    });

    expectRealmOn(granted, nginx.url);
    expect(post.status).toBe(202);
    expect(post.headers.location).toMatch(new RegExp(`^${escape(nginx.url)}/v2/nginx-compat/forged/blobs/uploads/`));
  });

  it("ignores X-Forwarded-Host and -Proto sent straight to Portcullis from an address that is not a trusted proxy", async () => {
    const { post, ...granted } = await startUpload(portcullis.url, "nginx-compat/forged", {
      ca: portcullis.caPem,
      localAddress: untrustedLoopback,
      headers: { "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http" },
    });

    expectRealmOn(granted, portcullis.url);
    expect(post.status).toBe(202);
    expect(post.headers.location).toMatch(
      new RegExp(`^${escape(portcullis.url)}/v2/nginx-compat/forged/blobs/uploads/`),
    );
  });

  it("believes the same headers from 127.0.0.1, the trusted proxy, so only the peer address made the difference", async () => {
    const { post, ...granted } = await startUpload(portcullis.url, "nginx-compat/forged", {
      ca: portcullis.caPem,
      localAddress: "127.0.0.1",
      headers: { "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https" },
    });

    expectRealmOn(granted, "https://evil.example");
    expect(post.status).toBe(202);
    expect(post.headers.location).toMatch(/^https:\/\/evil\.example\/v2\/nginx-compat\/forged\/blobs\/uploads\//);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
