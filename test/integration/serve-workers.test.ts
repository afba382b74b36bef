import { createHash, randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { connect as netConnect, type Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readRecords } from "../../src/audit/reader.js";
import { httpsRequest, type HttpsResponse } from "../support/https-client.js";
import { spawnDaemon } from "../support/daemon-process.js";
import { freePort } from "../support/free-port.js";
import { cliPath, startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { childPids } from "../support/processes.js";
import { makeTempDir } from "../support/temp-dir.js";

const sha256 = (content: Buffer | string) => `sha256:${createHash("sha256").update(content).digest("hex")}`;

/**
 * `serve` with two worker processes on one port. Every request below goes out on a new connection, and each
 * process accepts from the shared socket whenever it is free, so consecutive requests land on either worker
 * at random: a test that needs both repeats until the access log (each line names its worker) shows both.
 */
describe("serve with a worker per core", () => {
  let serve: PortcullisServe;
  let token: string;

  const request = (
    path: string,
    options: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
  ) =>
    httpsRequest(`${serve.url}${path}`, {
      ca: serve.caPem,
      ...options,
      headers: { Authorization: `Bearer ${token}`, ...options.headers },
    });

  /**
   * The workers that served requests to paths matching `pattern`, by the access log; `count` is how many
   * such requests were answered, since a line is written when its response has gone.
   */
  async function workersServing(method: string, pattern: RegExp, count: number): Promise<Set<number>> {
    return new Set(await servedBy(method, pattern, count));
  }

  /** The worker of each such request in the access log, once `count` are there (or after a second). */
  async function servedBy(method: string, pattern: RegExp, count: number): Promise<number[]> {
    for (let attempt = 0; ; attempt++) {
      const lines = (await serve.output()).split("\n").filter((line) => line.startsWith("{"));
      const served = lines
        .map((line) => JSON.parse(line) as { msg?: string; method?: string; path?: string; worker?: number })
        .filter((entry) => entry.msg === "request" && entry.method === method && pattern.test(entry.path ?? ""));
      if (served.length >= count || attempt === 50) return served.map((entry) => entry.worker as number);
      await sleep(20);
    }
  }

  const pushBlob = async (repository: string, content: Buffer | string) => {
    const res = await request(`/v2/${repository}/blobs/uploads/?digest=${sha256(content)}`, {
      method: "POST",
      body: content,
    });
    expect(res.status).toBe(201);
  };

  const manifestOf = async (repository: string, marker: string) => {
    const config = JSON.stringify({ architecture: "amd64", os: "linux", marker });
    const layer = randomBytes(64);
    await pushBlob(repository, config);
    await pushBlob(repository, layer);
    return JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }],
    });
  };

  beforeAll(async () => {
    serve = await startPortcullisServe({ env: { PORTCULLIS_WORKERS: "2", PORTCULLIS_LOG_LEVEL: "info" } });
    const scope = "repository:team/app:pull,push";
    const basic = Buffer.from(`admin:${serve.adminPassword}`).toString("base64");
    const res = await httpsRequest(`${serve.url}/token?service=portcullis&scope=${scope}`, {
      ca: serve.caPem,
      headers: { Authorization: `Basic ${basic}` },
    });
    token = (JSON.parse(res.body.toString()) as { token: string }).token;
  });

  afterAll(async () => {
    await serve?.stop();
  });

  it("runs the two server processes it was asked for", async () => {
    let served = new Set<number>();
    for (let i = 1; i <= 40 && served.size < 2; i++) {
      expect((await request("/v2/")).status).toBe(200);
      served = await workersServing("GET", /^\/v2\/$/, i);
    }
    expect(served.size).toBe(2);
  });

  it("resumes a TLS session on whichever worker takes the next connection, with an ECDSA certificate", async () => {
    const connectOnce = (session?: Buffer) =>
      new Promise<{ reused: boolean; session?: Buffer; keyType?: string }>((resolve, reject) => {
        const socket = tlsConnect({
          host: "127.0.0.1",
          port: serve.port,
          ca: serve.caPem,
          servername: "localhost",
          session,
        });
        let ticket: Buffer | undefined;
        socket.on("session", (data: Buffer) => (ticket = data));
        socket.once("secureConnect", () => {
          const keyType = socket.getPeerX509Certificate()?.publicKey.asymmetricKeyType;
          const reused = socket.isSessionReused();
          // TLS 1.3 sends its tickets after the handshake: ask for something so they arrive.
          socket.write("GET /v2/_catalog HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
          socket.resume();
          socket.once("end", () => resolve({ reused, session: ticket, keyType }));
        });
        socket.once("error", reject);
      });
    const first = await connectOnce();
    expect(first.reused).toBe(false);
    expect(first.keyType).toBe("ec");
    let session = first.session;
    // Until both processes have served a connection: each resumed a session the other may have made.
    let served = new Set<number>();
    for (let i = 2; i <= 40 && (i <= 5 || served.size < 2); i++) {
      const next = await connectOnce(session);
      expect(next.reused).toBe(true);
      session = next.session ?? session;
      served = await workersServing("GET", /^\/v2\/_catalog$/, i);
    }
    expect(served.size).toBe(2);
  });

  it("spreads a burst of keep-alive connections over both processes, whichever accepted them", async () => {
    // 16 connections opened at once and kept open: the kernel may give all of them to one process, which
    // then hands some to the other. Each asks for its own path, so the access log says who served which.
    const open = Array.from(
      { length: 16 },
      (_, i) =>
        new Promise<Socket>((resolve, reject) => {
          const socket = tlsConnect({ host: "127.0.0.1", port: serve.port, ca: serve.caPem, servername: "localhost" });
          socket.once("secureConnect", () => {
            socket.write(`GET /v2/burst/c${i}/tags/list HTTP/1.1\r\nHost: localhost\r\n\r\n`);
            socket.once("data", () => resolve(socket));
          });
          socket.once("error", reject);
        }),
    );
    const sockets = await Promise.all(open);
    const workers = await servedBy("GET", /^\/v2\/burst\/c\d+\/tags\/list$/, 16);
    for (const socket of sockets) socket.destroy();
    expect(workers).toHaveLength(16);
    // Hand-overs wait for a difference of 4 open connections: 16 end up no worse than 10 : 6, or 11 : 5 when a
    // keep-alive connection an earlier test left open counts on one side. Without hand-overs: often 16 : 0.
    for (const worker of [0, 1]) expect(workers.filter((w) => w === worker).length).toBeGreaterThanOrEqual(5);
  });

  it("completes a chunked upload whose requests land on different workers, with the right digest", async () => {
    let touchedBy = new Set<number>();
    for (let attempt = 0; attempt < 10 && touchedBy.size < 2; attempt++) touchedBy = await chunkedUpload();
    expect(touchedBy.size).toBe(2);
  });

  /** One chunked upload, checked; resolves to the workers that took its chunks and its closing PUT. */
  async function chunkedUpload(): Promise<Set<number>> {
    const chunks = [randomBytes(300_000), randomBytes(200_000), randomBytes(100_000)];
    const whole = Buffer.concat(chunks);
    const started = await request("/v2/team/app/blobs/uploads/", { method: "POST" });
    expect(started.status).toBe(202);
    let location = new URL(started.headers.location as string).pathname;
    let offset = 0;
    for (const chunk of chunks) {
      const res: HttpsResponse = await request(location, {
        method: "PATCH",
        headers: {
          "Content-Type": "application/octet-stream",
          "Content-Range": `${offset}-${offset + chunk.length - 1}`,
        },
        body: chunk,
      });
      expect(res.status).toBe(202);
      offset += chunk.length;
      expect(res.headers.range).toBe(`0-${offset - 1}`);
      location = new URL(res.headers.location as string).pathname;
    }
    const done = await request(`${location}?digest=${sha256(whole)}`, { method: "PUT" });
    expect(done.status).toBe(201);
    const fetched = await request(`/v2/team/app/blobs/${sha256(whole)}`);
    expect(fetched.status).toBe(200);
    expect(sha256(fetched.body)).toBe(sha256(whole));

    const uploadPath = new RegExp(`^${location.split("?")[0]}$`);
    const patchedBy = await workersServing("PATCH", uploadPath, chunks.length);
    return new Set([...patchedBy, ...(await workersServing("PUT", uploadPath, 1))]);
  }

  it("lets exactly one of two workers complete the same upload", async () => {
    let racedAcrossWorkers = 0;
    for (let round = 0; round < 8; round++) {
      const content = randomBytes(50_000);
      const started = await request("/v2/team/app/blobs/uploads/", { method: "POST" });
      const location = new URL(started.headers.location as string).pathname;
      const patched = await request(location, {
        method: "PATCH",
        headers: { "Content-Type": "application/octet-stream" },
        body: content,
      });
      expect(patched.status).toBe(202);
      const answers = await Promise.all(
        [0, 1].map(() => request(`${location}?digest=${sha256(content)}`, { method: "PUT" })),
      );
      expect(answers.map((a) => a.status).sort()).toEqual([201, 404]);
      if ((await workersServing("PUT", new RegExp(`^${location}$`), 2)).size === 2) racedAcrossWorkers++;
    }
    expect(racedAcrossWorkers).toBeGreaterThan(0);
  });

  it("never lets two workers both win a race on one tag: the tag, its manifest and the audit log agree", async () => {
    for (let round = 0; round < 10; round++) {
      const contenders = await Promise.all([manifestOf("team/app", `a${round}`), manifestOf("team/app", `b${round}`)]);
      const answers = await Promise.all(
        contenders.map((content) =>
          request("/v2/team/app/manifests/race", {
            method: "PUT",
            headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
            body: content,
          }),
        ),
      );
      expect(answers.map((a) => a.status)).toEqual([201, 201]);
      const current = await request("/v2/team/app/manifests/race", {
        headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
      });
      expect(current.status).toBe(200);
      const winner = current.headers["docker-content-digest"];
      expect(contenders.map((c) => sha256(c))).toContain(winner);
      expect(sha256(current.body)).toBe(winner);
      // Both manifests stay fetchable by digest: the loser lost the tag, not its content.
      for (const content of contenders) {
        expect((await request(`/v2/team/app/manifests/${sha256(content)}`, { method: "HEAD" })).status).toBe(200);
      }
      const pushes = [...readRecords(`${serve.dataDir}/audit`)]
        .flatMap((entry) => (entry.record ? [entry.record] : []))
        .filter((record) => record.action === "push" && record.target?.tag === "race");
      expect(pushes.at(-1)?.target?.digest).toBe(winner);
    }
    expect((await workersServing("PUT", /^\/v2\/team\/app\/manifests\/race$/, 20)).size).toBe(2);
  });
});

describe("serve with a worker per core, under a request budget", () => {
  let serve: PortcullisServe;

  beforeAll(async () => {
    serve = await startPortcullisServe({
      env: {
        PORTCULLIS_WORKERS: "2",
        PORTCULLIS_LOG_LEVEL: "info",
        PORTCULLIS_RATE_LIMITS_REQUESTS_PER_ACCOUNT: "{points: 10, durationSeconds: 600}",
      },
    });
  });

  afterAll(async () => {
    await serve?.stop();
  });

  it("counts one budget for an account, whichever worker serves its requests", async () => {
    const basic = Buffer.from(`admin:${serve.adminPassword}`).toString("base64");
    const tokenRes = await httpsRequest(`${serve.url}/token?service=portcullis`, {
      ca: serve.caPem,
      headers: { Authorization: `Basic ${basic}` },
    });
    const { token } = JSON.parse(tokenRes.body.toString()) as { token: string };
    const statuses: number[] = [];
    for (let i = 0; i < 16; i++) {
      const res = await httpsRequest(`${serve.url}/v2/`, {
        ca: serve.caPem,
        headers: { Authorization: `Bearer ${token}` },
      });
      statuses.push(res.status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.slice(10)).toEqual(Array(6).fill(429));
    const log = (await serve.output()).split("\n").filter((line) => line.includes('"path":"/v2/"'));
    const workers = new Set(log.map((line) => (JSON.parse(line) as { worker: number }).worker));
    expect(workers.size).toBe(2);
  });
});

describe("serve with a worker per core, while it starts", () => {
  it("answers a connection made the moment its port accepts, before its workers are ready", async () => {
    const home = await makeTempDir("portcullis-serve-start-");
    const port = await freePort();
    const child = spawnDaemon(
      process.execPath,
      [
        cliPath,
        "serve",
        "--listen",
        `127.0.0.1:${port}`,
        "--data",
        join(home.path, "data"),
        "--certs",
        join(home.path, "certs"),
      ],
      { logPath: join(home.path, "serve.log"), env: { ...process.env, PORTCULLIS_WORKERS: "2" } },
    );
    try {
      let socket: Socket | undefined;
      while (!socket && child.isRunning()) {
        socket = await new Promise<Socket | undefined>((resolve) => {
          const attempt = netConnect(port, "127.0.0.1", () => resolve(attempt));
          attempt.once("error", () => resolve(undefined));
        });
        if (!socket) await sleep(5);
      }
      expect(socket).toBeDefined();
      const secure = tlsConnect({ socket, servername: "localhost", rejectUnauthorized: false });
      const answer = await new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        secure.once("secureConnect", () =>
          secure.write("GET /v2/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        );
        secure.on("data", (chunk: Buffer) => chunks.push(chunk));
        secure.once("end", () => resolve(Buffer.concat(chunks).toString()));
        secure.once("error", reject);
        secure.setTimeout(20_000, () =>
          reject(new Error("no answer within 20 s: the connection was accepted into nothing")),
        );
      });
      expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    } finally {
      await child.stop();
      await home.stop();
    }
  });
});

describe("serve with a worker per core, stopping", () => {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it("stops a worker that is still being restarted when the stop comes, before it exits itself", async () => {
    const serve = await startPortcullisServe({ env: { PORTCULLIS_WORKERS: "2" } });
    try {
      const [worker] = childPids(serve.process.pid);
      expect(worker).toBeDefined();
      process.kill(worker as number, "SIGKILL");
      let replacement: number | undefined;
      for (let i = 0; i < 1000 && replacement === undefined; i++) {
        replacement = childPids(serve.process.pid).find((pid) => pid !== worker);
        if (replacement === undefined) await sleep(5);
      }
      expect(replacement).toBeDefined();
      // The replacement takes a few hundred ms to start: the stop comes while it does.
      process.kill(serve.process.pid, "SIGTERM");
      expect(await serve.process.exited).toEqual({ code: 0, signal: null });
      expect(alive(replacement as number)).toBe(false);
      expect(await serve.output()).not.toMatch(/could not restart/);
    } finally {
      await serve.stop();
    }
  });
});

describe("serve with a worker per core, reloading", () => {
  it("applies an edited policy in every server process on SIGHUP, and keeps serving", async () => {
    const dir = await makeTempDir("portcullis-serve-reload-");
    const configFile = join(dir.path, "portcullis.yaml");
    const policy = (actions: string) =>
      `policies:\n  - { account: admin, repository: "team/*", actions: [${actions}] }\n`;
    await writeFile(configFile, policy("pull"));
    const serve = await startPortcullisServe({ args: ["--config", configFile], env: { PORTCULLIS_WORKERS: "2" } });
    try {
      const basic = Buffer.from(`admin:${serve.adminPassword}`).toString("base64");
      const granted = async () => {
        const res = await httpsRequest(`${serve.url}/token?service=portcullis&scope=repository:team/app:pull,push`, {
          ca: serve.caPem,
          headers: { Authorization: `Basic ${basic}` },
        });
        const { token } = JSON.parse(res.body.toString()) as { token: string };
        const claims = JSON.parse(Buffer.from(token.split(".")[1] as string, "base64url").toString()) as {
          access: { actions: string[] }[];
        };
        return claims.access[0]?.actions.join(",") ?? "";
      };
      // Four answers at once: each process takes connections while it is free, so they usually come from both.
      const fromBoth = async () => Promise.all([granted(), granted(), granted(), granted()]).then((a) => a.join(" "));
      expect(await fromBoth()).toBe("pull pull pull pull");
      await writeFile(configFile, policy("pull, push"));
      process.kill(serve.process.pid, "SIGHUP");
      let answers = "";
      for (let attempt = 0; attempt < 50 && answers !== "pull,push pull,push pull,push pull,push"; attempt++) {
        await sleep(100);
        answers = await fromBoth();
      }
      expect(answers).toBe("pull,push pull,push pull,push pull,push");
      expect(serve.process.isRunning()).toBe(true);
    } finally {
      await serve.stop();
      await dir.stop();
    }
  });
});
