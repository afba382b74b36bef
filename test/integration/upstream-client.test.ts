import { createHash, randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { Readable } from "node:stream";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { createUpstreamClient, type UpstreamConfig, type UpstreamClient } from "../../src/upstream/client.js";
import { UpstreamError } from "../../src/upstream/errors.js";
import { startDockerRegistry, type DockerRegistry } from "../support/docker-registry.js";
import { freePort } from "../support/free-port.js";
import { writeHtpasswdFile } from "../support/htpasswd-file.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { createTestCa, issueServerCertificate, type TestCa } from "../support/test-ca.js";

const account = "gateway";
const password = randomBytes(12).toString("base64url");

function capturedLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString("utf8"));
      done();
    },
  });
  return { logger: createLogger({ level: "trace", destination, pretty: false }), lines };
}

function entry(name: string, url: string, extra: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return { name, url, connectTimeoutMs: 5_000, idleTimeoutMs: 30_000, ...extra };
}

async function drain(res: import("node:http").IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe("the upstream client against docker-registry with htpasswd over plain HTTP", () => {
  let work: TempDir;
  let registry: DockerRegistry;
  const clients: UpstreamClient[] = [];
  const log = capturedLogger();
  const client = (extra: Partial<UpstreamConfig> = {}) => {
    const made = createUpstreamClient(entry("plain", registry.url, extra), { logger: log.logger });
    clients.push(made);
    return made;
  };

  beforeAll(async () => {
    work = await makeTempDir("upstream-client-plain-");
    const htpasswd = await writeHtpasswdFile(join(work.path, "htpasswd"), { [account]: password });
    registry = await startDockerRegistry({ auth: { htpasswd: { realm: "upstream", path: htpasswd } } });
  });
  afterAll(async () => {
    for (const made of clients) made.close();
    await registry?.stop();
    await work?.stop();
  });

  it("signs in with Basic credentials the /v2/ challenge asks for", async () => {
    const res = await client({ username: account, password }).request({ method: "GET", path: "/v2/" });
    await drain(res);
    expect(res.statusCode).toBe(200);
  });

  it("streams an upload body to the upstream and reads the blob back", async () => {
    const upstream = client({ username: account, password });
    const blob = randomBytes(3 * 1024 * 1024);
    const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;
    const start = await upstream.request({
      method: "POST",
      path: "/v2/team/app/blobs/uploads/",
      scope: "repository:team/app:pull,push",
    });
    await drain(start);
    expect(start.statusCode).toBe(202);
    const location = new URL(String(start.headers.location), registry.url);
    location.searchParams.set("digest", digest);
    const put = await upstream.request({
      method: "PUT",
      path: `${location.pathname}${location.search}`,
      scope: "repository:team/app:pull,push",
      headers: { "content-type": "application/octet-stream", "content-length": String(blob.length) },
      body: Readable.from([blob.subarray(0, 1024 * 1024), blob.subarray(1024 * 1024)]),
    });
    await drain(put);
    expect(put.statusCode).toBe(201);
    const back = await upstream.request({
      method: "GET",
      path: `/v2/team/app/blobs/${digest}`,
      scope: "repository:team/app:pull",
    });
    expect((await drain(back)).equals(blob)).toBe(true);
  });

  it("passes on the upstream's 401 for a wrong password, and never logs the password", async () => {
    const wrong = `${password}-wrong`;
    const res = await client({ username: account, password: wrong }).request({ method: "GET", path: "/v2/" });
    await drain(res);
    expect(res.statusCode).toBe(401);
    expect(log.lines.join("")).not.toContain(wrong);
    expect(log.lines.join("")).not.toContain(password);
  });

  it("never forwards an Authorization header its caller passes", async () => {
    const res = await client().request({
      method: "GET",
      path: "/v2/",
      headers: { Authorization: `Basic ${Buffer.from(`${account}:${password}`).toString("base64")}` },
    });
    await drain(res);
    expect(res.statusCode).toBe(401);
  });

  it("rejects with an error naming the upstream when nothing listens there", async () => {
    const port = await freePort();
    const refused = createUpstreamClient(entry("gone", `http://127.0.0.1:${port}`), { logger: log.logger });
    clients.push(refused);
    const failure = refused.request({ method: "GET", path: "/v2/" });
    await expect(failure).rejects.toBeInstanceOf(UpstreamError);
    await expect(failure).rejects.toThrow(/upstream "gone".*not reachable/);
  });
});

describe("the upstream client against docker-registry with its own CA", () => {
  let work: TempDir;
  let ca: TestCa;
  let registry: DockerRegistry;
  const clients: UpstreamClient[] = [];
  const client = (extra: Partial<UpstreamConfig> = {}) => {
    const made = createUpstreamClient(entry("private", registry.url, { username: account, password, ...extra }), {
      logger: capturedLogger().logger,
    });
    clients.push(made);
    return made;
  };

  beforeAll(async () => {
    work = await makeTempDir("upstream-client-tls-");
    ca = await createTestCa(join(work.path, "ca"), "upstream test CA");
    const tls = await issueServerCertificate(join(work.path, "tls"), ca, "docker-registry upstream");
    const htpasswd = await writeHtpasswdFile(join(work.path, "htpasswd"), { [account]: password });
    registry = await startDockerRegistry({
      auth: { htpasswd: { realm: "upstream", path: htpasswd } },
      tls: { certificate: tls.certFile, key: tls.keyFile, caPem: ca.pem },
    });
  });
  afterAll(async () => {
    for (const made of clients) made.close();
    await registry?.stop();
    await work?.stop();
  });

  it("trusts the upstream's certificate through the configured CA bundle", async () => {
    const res = await client({ ca: ca.certFile }).request({ method: "GET", path: "/v2/" });
    await drain(res);
    expect(res.statusCode).toBe(200);
  });

  it("refuses the upstream's certificate without its CA, with an error naming the upstream", async () => {
    const failure = client().request({ method: "GET", path: "/v2/" });
    await expect(failure).rejects.toMatchObject({ failure: "certificate" });
    await expect(failure).rejects.toThrow(/upstream "private".*certificate.*upstreams\.private\.ca/);
  });
});
