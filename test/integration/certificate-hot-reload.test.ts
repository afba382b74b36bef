import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { request } from "node:https";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type PeerCertificate } from "node:tls";
import { promisify } from "node:util";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpsRequest } from "../support/https-client.js";
import { fetchToken } from "../support/registry-token.js";
import { cliPath, startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";

const blobSize = 512 * 1024 * 1024;
const pattern = randomBytes(1024 * 1024);

function blobStream(): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= blobSize) return void this.push(null);
      sent += pattern.length;
      this.push(pattern);
    },
  });
}

function expectedDigest(): string {
  const hash = createHash("sha256");
  for (let i = 0; i < blobSize / pattern.length; i++) hash.update(pattern);
  return `sha256:${hash.digest("hex")}`;
}

/** The certificate a brand-new TLS connection is given. */
function peerCertificate(port: number, ca: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
      resolve(socket.getPeerCertificate());
      socket.end();
    });
    socket.once("error", reject);
  });
}

describe("renewing the server certificate while serving", () => {
  let serve: PortcullisServe;
  let configDir: TempDir;
  let configFile: string;
  let digest: string;
  let auth: Record<string, string>;

  beforeAll(async () => {
    configDir = await makeTempDir("portcullis-reload-config-");
    configFile = join(configDir.path, "portcullis.yaml");
    await writeFile(configFile, "tls:\n  names: [first.example]\n");
    serve = await startPortcullisServe({ args: ["--config", configFile] });
    digest = expectedDigest();
    const token = await fetchToken(serve.url, serve.caPem, "admin", serve.adminPassword, [
      "repository:big/blob:pull,push",
    ]);
    auth = { Authorization: `Bearer ${token}` };
    const start = await httpsRequest(`${serve.url}/v2/big/blob/blobs/uploads/`, {
      method: "POST",
      ca: serve.caPem,
      headers: auth,
    });
    const patched = await httpsRequest(start.headers.location as string, {
      method: "PATCH",
      ca: serve.caPem,
      headers: { "Content-Type": "application/octet-stream", ...auth },
      body: blobStream(),
    });
    expect(patched.status).toBe(202);
    const done = await httpsRequest(`${patched.headers.location}?digest=${digest}`, {
      method: "PUT",
      ca: serve.caPem,
      headers: auth,
    });
    expect(done.status).toBe(201);
  });
  afterAll(async () => {
    await serve?.stop();
    if (serve) await removeTempDir(serve.home);
    await configDir?.stop();
  });

  it("lets a 512 MiB pull finish while new connections get the certificate with the new name", async () => {
    expect((await peerCertificate(serve.port, serve.caPem)).subjectaltname).not.toContain("reload.example");

    const hash = createHash("sha256");
    let received = 0;
    let response: import("node:http").IncomingMessage | undefined;
    const pulled = new Promise<void>((resolve, reject) => {
      const req = request(
        `${serve.url}/v2/big/blob/blobs/${digest}`,
        { ca: serve.caPem, agent: false, headers: auth },
        (res) => {
          response = res;
          res.on("data", (chunk: Buffer) => {
            hash.update(chunk);
            received += chunk.length;
          });
          res.on("end", resolve);
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end();
    });
    while (received < 16 * 1024 * 1024) await sleep(5);
    response!.pause();
    const pausedAt = received;

    await promisify(execFile)(process.execPath, [
      cliPath,
      "ca",
      "renew",
      "--name",
      "reload.example",
      "--config",
      configFile,
      "--certs",
      serve.certsDir,
      "--data",
      serve.dataDir,
    ]);
    let san = "";
    for (let i = 0; i < 100 && !san.includes("reload.example"); i++) {
      await sleep(100);
      san = (await peerCertificate(serve.port, serve.caPem)).subjectaltname ?? "";
    }
    expect(san).toContain("DNS:reload.example");
    expect(received).toBe(pausedAt);

    response!.resume();
    await pulled;
    expect(received).toBe(blobSize);
    expect(`sha256:${hash.digest("hex")}`).toBe(digest);
  });

  it("covers a name added to tls.names in the config file, without a restart", async () => {
    expect((await peerCertificate(serve.port, serve.caPem)).subjectaltname).toContain("DNS:first.example");
    await writeFile(configFile, "tls:\n  names: [first.example, added.example]\n");
    let san = "";
    for (let i = 0; i < 100 && !san.includes("added.example"); i++) {
      await sleep(100);
      san = (await peerCertificate(serve.port, serve.caPem)).subjectaltname ?? "";
    }
    expect(san).toContain("DNS:added.example");
    expect(san).toContain("DNS:first.example");
  });
});
