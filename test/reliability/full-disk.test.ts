import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkStorage } from "../../src/registry/fsck.js";
import { createFilesystemDriver } from "../../src/registry/storage/filesystem.js";
import type { PortcullisServe } from "../support/portcullis-serve.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { auditVerifyProblem, clientFor, startServer } from "./support/crash-harness.js";
import { sha256, type PushedImage, type RegistryClient } from "./support/registry-client.js";
import { mountSmallDisk, type SmallDisk } from "./support/small-disk.js";

async function timed<T>(task: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await task();
  return { value, ms: Date.now() - started };
}

const errorCode = (body: Buffer) =>
  (JSON.parse(body.toString()) as { errors: { code: string; detail?: { cause?: string } }[] }).errors[0];

describe("a full storage disk", () => {
  let home: TempDir;
  let disk: SmallDisk;
  let server: PortcullisServe;
  let client: RegistryClient;
  let stored: PushedImage;

  beforeAll(async () => {
    home = await makeTempDir("portcullis-rel-disk-");
    disk = await mountSmallDisk(join(home.path, "data", "docker"), "8m");
    server = await startServer(home.path);
    client = clientFor(server);
    stored = await client.pushImage("full/app", "v1", [randomBytes(256 * 1024)]);
    await disk.fill();
  });

  afterAll(async () => {
    client?.close();
    await server?.stop();
    await disk?.stop();
    await home?.stop();
  });

  it("refuses a monolithic blob push fast with 507 STORAGE_FULL naming ENOSPC", async () => {
    const blob = randomBytes(512 * 1024);
    const { value: answer, ms } = await timed(() =>
      client.send("POST", `/v2/full/app/blobs/uploads/?digest=${sha256(blob)}`, {
        repo: "full/app",
        headers: { "Content-Type": "application/octet-stream" },
        body: blob,
      }),
    );
    expect(answer.status).toBe(507);
    expect(errorCode(answer.body)).toMatchObject({
      code: "STORAGE_FULL",
      detail: { cause: expect.stringContaining("ENOSPC") },
    });
    expect(ms).toBeLessThan(5_000);
    const head = await client.send("HEAD", `/v2/full/app/blobs/${sha256(blob)}`, { repo: "full/app" });
    expect(head.status).toBe(404);
  });

  it("refuses a chunk (PATCH) at ENOSPC with 507, not 500 UNKNOWN, and keeps the session at its old size", async () => {
    await disk.free();
    const start = await client.send("POST", "/v2/full/app/blobs/uploads/", { repo: "full/app" });
    expect(start.status).toBe(202);
    await disk.fill();
    const location = String(start.headers.location);
    const patch = await client.send("PATCH", new URL(location, server.url).pathname, {
      repo: "full/app",
      headers: { "Content-Type": "application/octet-stream" },
      body: randomBytes(512 * 1024),
    });
    expect(patch.status).toBe(507);
    expect(errorCode(patch.body)).toMatchObject({ code: "STORAGE_FULL" });
    const status = await client.send("GET", new URL(location, server.url).pathname, { repo: "full/app" });
    expect([204, 404]).toContain(status.status);
    if (status.status === 204) expect(status.headers.range).toBe("0-0");
  });

  it("answers a chunk that fills the disk while its body still arrives with 507, not a reset connection", async () => {
    await disk.free();
    const start = await client.send("POST", "/v2/full/app/blobs/uploads/", { repo: "full/app" });
    expect(start.status).toBe(202);
    await disk.fill();
    // Many write batches long: the first write fails with most of the body still to come.
    const patch = await client.send("PATCH", new URL(String(start.headers.location), server.url).pathname, {
      repo: "full/app",
      headers: { "Content-Type": "application/octet-stream" },
      body: randomBytes(24 * 1024 * 1024),
    });
    expect(patch.status).toBe(507);
    expect(errorCode(patch.body)).toMatchObject({ code: "STORAGE_FULL" });
  });

  it("refuses a manifest push with 507 and leaves no tag behind", async () => {
    const manifest = stored.manifest.toString().replace('"os":"linux"', '"os":"linux"');
    const body = Buffer.from(JSON.stringify({ ...JSON.parse(manifest), annotations: { again: "yes" } }));
    const answer = await client.send("PUT", "/v2/full/app/manifests/v2", {
      repo: "full/app",
      headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
      body,
    });
    expect(answer.status).toBe(507);
    const tags = await client.send("GET", "/v2/full/app/tags/list", { repo: "full/app" });
    expect(JSON.parse(tags.body.toString())).toEqual({ name: "full/app", tags: ["v1"] });
  });

  it("keeps serving pulls, tokens and /healthz while full", async () => {
    const manifest = await client.send("GET", `/v2/full/app/manifests/v1`, {
      repo: "full/app",
      headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    expect(manifest.status).toBe(200);
    expect(manifest.body.equals(stored.manifest)).toBe(true);
    for (const [digest, content] of stored.blobs) {
      const blob = await client.send("GET", `/v2/full/app/blobs/${digest}`, { repo: "full/app" });
      expect(blob.body.equals(content)).toBe(true);
    }
    expect((await client.token(["repository:full/app:pull"])).status).toBe(200);
    const { value: health, ms } = await timed(() => client.send("GET", "/healthz"));
    expect(health.status).toBe(200);
    expect(ms).toBeLessThan(1_000);
  });

  it("leaves nothing partial visible, and pushes again as soon as space is freed, with no restart", async () => {
    const storage = createFilesystemDriver(server.dataDir);
    const later = () => Date.now() + 25 * 60 * 60 * 1000;
    const problems = await checkStorage(storage, { repair: false, now: later });
    // A write the disk refused leaves at most an empty directory or a session, which no request can see.
    const visible = problems.filter((p) => p.kind !== "upload-abandoned" && p.kind !== "blob-incomplete");
    expect(visible).toEqual([]);
    await disk.free();
    await checkStorage(storage, { repair: true, now: later });
    expect(await checkStorage(storage, { repair: false, now: later })).toEqual([]);
    const pushed = await client.pushImage("full/app", "v3", [randomBytes(512 * 1024)]);
    const back = await client.send("GET", `/v2/full/app/manifests/v3`, {
      repo: "full/app",
      headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    expect(back.body.equals(pushed.manifest)).toBe(true);
  });
});

describe("a full audit disk", () => {
  let home: TempDir;
  let disk: SmallDisk;
  let server: PortcullisServe;
  let client: RegistryClient;
  const lock = () => join(server.dataDir, "audit", "audit.lock");

  beforeAll(async () => {
    home = await makeTempDir("portcullis-rel-audit-disk-");
    disk = await mountSmallDisk(join(home.path, "data", "audit"), "1m");
    server = await startServer(home.path);
    client = clientFor(server);
    await client.pushImage("audited/app", "v1", [randomBytes(1024)]);
  });

  afterAll(async () => {
    client?.close();
    await server?.stop();
    await disk?.stop();
    await home?.stop();
  });

  it("refuses a token whose record cannot be written, at once, and leaves no lock behind", async () => {
    await disk.fill();
    for (let attempt = 0; attempt < 5; attempt++) {
      const { value: answer, ms } = await timed(() => client.token(["repository:audited/app:pull"]));
      expect(answer.status).toBe(503);
      expect(JSON.parse(answer.body.toString())).toMatchObject({ error: "temporarily_unavailable" });
      expect(answer.headers["retry-after"]).toBe("5");
      expect(ms).toBeLessThan(1_000);
    }
    expect(existsSync(lock())).toBe(false);
    const { value: health, ms } = await timed(() => client.send("GET", "/healthz"));
    expect(health.status).toBe(200);
    expect(ms).toBeLessThan(500);
  });

  it("issues tokens again as soon as space is freed, with no restart, and the chain verifies", async () => {
    await disk.free();
    expect((await client.token(["repository:audited/app:pull"])).status).toBe(200);
    expect(await auditVerifyProblem(server.dataDir)).toBeUndefined();
  });

  it("takes over an empty lock an older version left (no owner in it) instead of waiting on it for good", async () => {
    await writeFile(lock(), "");
    const old = new Date(Date.now() - 60_000);
    await utimes(lock(), old, old);
    const { value: answer, ms } = await timed(() => client.token(["repository:audited/app:pull"]));
    expect(answer.status).toBe(200);
    expect(ms).toBeLessThan(1_000);
  });

  it("never freezes the server longer than the 2 s lock wait on a fresh empty lock, and recovers within 10 s", async () => {
    await writeFile(lock(), "");
    const started = Date.now();
    const first = await timed(() => client.token(["repository:audited/app:pull"]));
    expect(first.ms).toBeLessThan(3_000);
    let status = first.value.status;
    while (status !== 200 && Date.now() - started < 15_000) {
      status = (await client.token(["repository:audited/app:pull"])).status;
    }
    expect(status).toBe(200);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("clears an empty lock at start, so a restart is enough", async () => {
    await client.close();
    await server.stop();
    await writeFile(join(home.path, "data", "audit", "audit.lock"), "");
    const old = new Date(Date.now() - 60_000);
    await utimes(join(home.path, "data", "audit", "audit.lock"), old, old);
    server = await startServer(home.path);
    client = clientFor(server);
    const { value: answer, ms } = await timed(() => client.token(["repository:audited/app:pull"]));
    expect(answer.status).toBe(200);
    expect(ms).toBeLessThan(1_000);
  });
});
