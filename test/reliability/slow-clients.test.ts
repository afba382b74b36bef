import { randomBytes } from "node:crypto";
import { readdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect as netConnect } from "node:net";
import { connect, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { maxOpenUploads } from "../../src/registry/upload-store.js";
import { startGatewayUnderTest, type GatewayUnderTest } from "../support/gateway-under-test.js";
import { startRegistryUnderTest, type RegistryUnderTest } from "../support/registry-under-test.js";
import { createRegistryClient, sha256, type RegistryClient } from "./support/registry-client.js";
import { startLimitedGateway, type LimitedGateway } from "./support/limited-gateway.js";

const oci = "application/vnd.oci.image.manifest.v1+json";

function tlsSocket(gateway: LimitedGateway, localAddress = "127.0.0.1"): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const tcp = netConnect({ host: "127.0.0.1", port: gateway.port, localAddress });
    const socket = connect({ socket: tcp, ca: gateway.caPem, servername: "localhost" });
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Milliseconds until the server closes the socket (or `giveUpMs`, when it never does). */
function closedWithin(socket: TLSSocket, giveUpMs: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(giveUpMs), giveUpMs);
    socket.on("data", () => undefined);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
    socket.on("error", () => undefined);
  });
}

/** A gateway with these limits for the tests of one block, started before them and stopped after. */
function useLimitedGateway(limits: Parameters<typeof startLimitedGateway>[0]): { gateway: LimitedGateway } {
  const the = {} as { gateway: LimitedGateway };
  beforeAll(async () => {
    the.gateway = await startLimitedGateway(limits);
  });
  afterAll(async () => the.gateway?.stop());
  return the;
}

describe("slow clients against short limits", () => {
  const the = useLimitedGateway({ headerTimeoutMs: 2_000, idleTimeoutMs: 3_000, connectionsPerAddress: 40 });

  it("cuts a connection whose headers trickle in past the header timeout (a slowloris)", async () => {
    const socket = await tlsSocket(the.gateway);
    socket.write("GET /v2/ HTTP/1.1\r\nHost: localhost\r\n");
    const drip = setInterval(() => socket.writable && socket.write(`X-Slow-${Date.now()}: 1\r\n`), 300);
    const ms = await closedWithin(socket, 15_000);
    clearInterval(drip);
    expect(ms).toBeLessThan(5_000);
  });

  it("cuts a body that stops arriving after the idle timeout", async () => {
    const socket = await tlsSocket(the.gateway);
    socket.write(
      'PUT /v2/slow/app/manifests/v1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"schema',
    );
    const ms = await closedWithin(socket, 15_000);
    expect(ms).toBeGreaterThanOrEqual(2_500);
    expect(ms).toBeLessThan(6_000);
  });

  it("closes connections beyond the limit from one address at once, and serves other addresses", async () => {
    const held: TLSSocket[] = [];
    const refused: number[] = [];
    for (let i = 0; i < 60; i++) {
      try {
        const socket = await tlsSocket(the.gateway, "127.0.0.3");
        held.push(socket);
      } catch {
        refused.push(i);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    const open = held.filter((s) => !s.destroyed && s.readyState === "open").length;
    expect(open).toBeLessThanOrEqual(40);
    expect(refused.length + (held.length - open)).toBeGreaterThanOrEqual(20);
    expect((await the.gateway.client.send("GET", "/v2/")).status).toBe(200);
    for (const socket of held) socket.destroy();
  });
});

describe("a slowloris of 500 connections", () => {
  const the = useLimitedGateway({});

  it("does not slow a normal push noticeably", async () => {
    const layers = () => [randomBytes(1024 * 1024), randomBytes(1024 * 1024), randomBytes(256 * 1024)];
    await the.gateway.client.pushImage("warm/app", "v0", layers());
    const quiet: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      await the.gateway.client.pushImage("quiet/app", `v${i}`, layers());
      quiet.push(Date.now() - started);
    }
    const slow: TLSSocket[] = [];
    const opening = Array.from({ length: 500 }, async (_, i) => {
      try {
        const socket = await tlsSocket(the.gateway, `127.0.1.${1 + (i % 2)}`);
        socket.on("error", () => undefined);
        socket.write("GET /v2/ HTTP/1.1\r\nHost: localhost\r\n");
        slow.push(socket);
      } catch {
        // refused past the per-address limit: as it should be
      }
    });
    await Promise.all(opening);
    const drip = setInterval(() => {
      for (const socket of slow) if (socket.writable) socket.write("X-a: b\r\n");
    }, 1_000);
    const loaded: number[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        await the.gateway.client.pushImage("busy/app", `v${i}`, layers());
        loaded.push(Date.now() - started);
      }
    } finally {
      clearInterval(drip);
      for (const socket of slow) socket.destroy();
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[1] as number;
    console.log(
      `push ms quiet ${quiet.join(",")} under a slowloris of ${slow.length} open connections ${loaded.join(",")}`,
    );
    expect(slow.length).toBeGreaterThanOrEqual(400);
    expect(median(loaded)).toBeLessThan(median(quiet) * 2 + 300);
  });
});

describe("greedy pushes", () => {
  const the = useLimitedGateway({});

  const uploads = () => join(the.gateway.dataDir, "docker/registry/v2/repositories/greedy/app/_uploads");

  it("refuses a manifest that lists one layer 10,000 times, fast", async () => {
    const layer = Buffer.from("one layer");
    const digest = await the.gateway.client.pushBlob("greedy/app", layer);
    const config = await the.gateway.client.pushBlob("greedy/app", Buffer.from("{}"));
    const descriptor = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest, size: layer.length };
    const manifest = {
      schemaVersion: 2,
      mediaType: oci,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: config, size: 2 },
      layers: Array.from({ length: 10_000 }, () => descriptor),
    };
    const started = Date.now();
    const answer = await the.gateway.client.send("PUT", "/v2/greedy/app/manifests/many", {
      headers: { "Content-Type": oci },
      body: JSON.stringify(manifest),
    });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body.toString())).toMatchObject({ errors: [{ code: "MANIFEST_INVALID" }] });
    expect(Date.now() - started).toBeLessThan(1_000);
    // The same layer listed 1,000 times (the limit) is one look-up, not a thousand.
    const within = { ...manifest, layers: manifest.layers.slice(0, 1_000) };
    const ok = await the.gateway.client.send("PUT", "/v2/greedy/app/manifests/many", {
      headers: { "Content-Type": oci },
      body: JSON.stringify(within),
    });
    expect(ok.status).toBe(201);
  });

  it("answers a manifest over 4 MiB with 413, and refusals before the body is read are not a false 503", async () => {
    const cases: { path: string; method: string; status: number; body: Buffer }[] = [
      { method: "PUT", path: "/v2/greedy/app/manifests/-bad-tag", status: 400, body: randomBytes(2 * 1024 * 1024) },
      { method: "PUT", path: "/v2/greedy/app/manifests/big", status: 413, body: Buffer.alloc(5 * 1024 * 1024, 0x20) },
      {
        method: "PATCH",
        path: "/v2/greedy/app/blobs/uploads/00000000-0000-4000-8000-000000000000",
        status: 404,
        body: randomBytes(8 * 1024 * 1024),
      },
    ];
    for (const c of cases) {
      const answer = await the.gateway.client.send(c.method, c.path, {
        headers: { "Content-Type": oci },
        body: c.body,
      });
      expect(`${c.method} ${c.path} ${answer.status}`).toBe(`${c.method} ${c.path} ${c.status}`);
    }
  });

  it("expires an upload session idle for a day and removes its files", async () => {
    const start = await the.gateway.client.send("POST", "/v2/greedy/app/blobs/uploads/");
    const path = new URL(String(start.headers.location), the.gateway.url).pathname;
    expect((await the.gateway.client.send("PATCH", path, { body: randomBytes(1000) })).status).toBe(202);
    const id = String(start.headers["docker-upload-uuid"]);
    const dayAgo = new Date(Date.now() - 25 * 60 * 60 * 1000);
    await writeFile(join(uploads(), id, "startedat"), dayAgo.toISOString());
    await utimes(join(uploads(), id, "data"), dayAgo, dayAgo);
    const late = await the.gateway.client.send("PATCH", path, { body: randomBytes(1000) });
    expect(late.status).toBe(404);
    expect(JSON.parse(late.body.toString())).toMatchObject({ errors: [{ code: "BLOB_UPLOAD_UNKNOWN" }] });
    expect(await readdir(uploads())).not.toContain(id);
  });

  it("removes abandoned sessions (2,000 POST-only uploads) when a new one starts, and caps open sessions", async () => {
    const dayAgo = new Date(Date.now() - 25 * 60 * 60 * 1000);
    const live: string[] = [];
    for (let i = 0; i < 2_000; i++) {
      const start = await the.gateway.client.send("POST", "/v2/greedy/app/blobs/uploads/");
      expect(start.status).toBe(202);
      const id = String(start.headers["docker-upload-uuid"]);
      if (i % 200 === 0) live.push(id);
      else await writeFile(join(uploads(), id, "startedat"), dayAgo.toISOString());
    }
    // The 1,000 cap was reached along the way; each time, the expired ones made room, and only they went.
    const entries = await readdir(uploads());
    expect(entries.length).toBeLessThanOrEqual(maxOpenUploads);
    expect(entries).toEqual(expect.arrayContaining(live));
    expect((await the.gateway.client.send("POST", "/v2/greedy/app/blobs/uploads/")).status).toBe(202);
  });

  it("refuses a new session past the cap of open ones per repository with 429", async () => {
    for (let i = 0; i < maxOpenUploads; i++) await the.gateway.client.send("POST", "/v2/greedy/full/blobs/uploads/");
    const refused = await the.gateway.client.send("POST", "/v2/greedy/full/blobs/uploads/");
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.body.toString())).toMatchObject({ errors: [{ code: "TOOMANYREQUESTS" }] });
    const blob = Buffer.from("still pushable elsewhere");
    expect(await the.gateway.client.pushBlob("greedy/app", blob)).toBe(sha256(blob));
  });
});

/**
 * Through an upstream, a request that followed an early refusal on the same connection (the registry
 * answered before reading the whole body) got no answer at all — a PATCH after a 400, a 5 MiB manifest
 * after one. The gateway now closes such a connection after the refusal (src/gateway/proxy.ts).
 */
describe("early refusals through an upstream (http-proxy in front of a V2 registry)", () => {
  let registry: RegistryUnderTest;
  let gateway: GatewayUnderTest;
  let client: RegistryClient;
  beforeAll(async () => {
    registry = await startRegistryUnderTest();
    gateway = await startGatewayUnderTest({ upstreamUrl: registry.url });
    client = createRegistryClient({ url: gateway.url, ca: gateway.caPem, user: "", password: "" });
  });
  afterAll(async () => {
    client?.close();
    await gateway?.stop();
    await registry?.stop();
  });

  const answerWithin = (ms: number, method: string, path: string, body: Buffer) =>
    Promise.race([
      client.send(method, path, { headers: { "Content-Type": oci }, body }).then((a) => a.status),
      new Promise<string>((resolve) => setTimeout(() => resolve(`no answer within ${ms} ms`), ms)),
    ]);

  it("passes on the registry's 400, 413 and 404, in turn on the same connections, not a false 503 or nothing", async () => {
    const unknown = "/v2/up/app/blobs/uploads/00000000-0000-4000-8000-000000000000";
    const answers = [
      await answerWithin(10_000, "PUT", "/v2/up/app/manifests/-bad-tag", randomBytes(2 * 1024 * 1024)),
      await answerWithin(10_000, "PUT", "/v2/up/app/manifests/big", Buffer.alloc(5 * 1024 * 1024, 0x20)),
      await answerWithin(10_000, "PATCH", unknown, randomBytes(8 * 1024 * 1024)),
    ];
    expect(answers).toEqual([400, 413, 404]);
  });
});
