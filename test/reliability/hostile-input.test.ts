import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { connect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PortcullisServe } from "../support/portcullis-serve.js";
import { clientFor, startServer } from "./support/crash-harness.js";
import { createRandom, hostileRequest, rawHostileRequest, type HostileRequest } from "./support/hostile-requests.js";
import type { RegistryClient } from "./support/registry-client.js";

/** RELIABILITY_LONG=1 sends 100,000; CI sends the 10,000. */
const total = process.env.RELIABILITY_LONG ? 100_000 : 10_000;
const seed = Number(process.env.RELIABILITY_SEED ?? Date.now() % 1_000_000);
const repositories = ["fuzz/a", "fuzz/b", "fuzz/deep/c", "library/x"];

const rssMiB = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, { encoding: "utf8", flag: "r" });
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024;
};

interface Outcome {
  status: number;
  contentType: string;
  body: Buffer;
}

function resolvedPath(path: string): string {
  try {
    return new URL(path, "https://127.0.0.1").pathname;
  } catch {
    return path; // a path no URL parser takes (`//%`) went out as it was written
  }
}

/** What is wrong with an answer: a 5xx without a declared cause, or an error not in its protocol's own form. */
function complaint(sent: HostileRequest, answer: Outcome): string | undefined {
  const { status, body } = answer;
  // The client sends the path as a URL resolves it (`/token/../v2/` goes out as `/v2/`).
  const path = sent.raw ? "" : resolvedPath(sent.path);
  const json = () => {
    try {
      return JSON.parse(body.toString()) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  if (status >= 500) {
    const cause = json();
    const declared = status === 503 && JSON.stringify(cause ?? "").length > 20;
    if (!declared) return `${status} ${body.toString().slice(0, 200)}`;
  }
  if (status < 400 || sent.method === "HEAD" || body.length === 0) return undefined;
  if (path.startsWith("/v2") && answer.contentType.includes("json")) {
    const errors = json()?.errors as { code?: unknown; message?: unknown }[] | undefined;
    if (!Array.isArray(errors) || typeof errors[0]?.code !== "string" || typeof errors[0]?.message !== "string") {
      return `${status} not an OCI error body: ${body.toString().slice(0, 200)}`;
    }
  }
  if (path.startsWith("/token") && status !== 404 && status !== 405 && typeof json()?.error !== "string") {
    return `${status} not an OAuth error body: ${body.toString().slice(0, 200)}`;
  }
  return undefined;
}

describe(`${total} malformed requests at the gateway (seed ${seed})`, () => {
  let server: PortcullisServe;
  let client: RegistryClient;
  const tokens = new Map<string, string>();

  beforeAll(async () => {
    server = await startServer(undefined);
    void server.process.exited.then((exit) => console.log(`the server exited: ${JSON.stringify(exit)}`));
    client = clientFor(server);
    for (const repo of repositories) {
      await client.pushImage(repo, "latest", [Buffer.from(`layer of ${repo}`)]);
      const answer = await client.token([`repository:${repo}:pull,push,delete`]);
      tokens.set(repo, (JSON.parse(answer.body.toString()) as { token: string }).token);
    }
  });

  afterAll(async () => {
    client?.close();
    await server?.stop();
  });

  function send(agent: Agent, sent: HostileRequest): Promise<Outcome | undefined> {
    return new Promise((resolve) => {
      const req = request(`${server.url}${sent.path}`, { method: sent.method, headers: sent.headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers["content-type"] ?? ""),
            body: Buffer.concat(chunks),
          }),
        );
        res.on("error", () => resolve(undefined));
      });
      req.setTimeout(20_000, () => req.destroy());
      // A refusal may come, and the connection close, before the whole body is sent: that is an answer too.
      req.on("error", () => resolve(undefined));
      req.end(sent.body);
    });
  }

  function sendRaw(sent: HostileRequest): Promise<Outcome | undefined> {
    return new Promise((resolve) => {
      const socket = connect({ host: "127.0.0.1", port: server.port, ca: server.caPem, servername: "localhost" });
      const chunks: Buffer[] = [];
      socket.on("secureConnect", () => {
        socket.write(sent.raw ?? "");
        // The body stops here: what the server makes of a request cut short is what is being tested.
        setTimeout(() => socket.end(), 50);
      });
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.setTimeout(10_000, () => socket.destroy());
      const done = () => {
        const text = Buffer.concat(chunks).toString("latin1");
        const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
        if (!match) return resolve(undefined);
        const [head = "", body = ""] = text.split("\r\n\r\n");
        resolve({
          status: Number(match[1]),
          contentType: /content-type: ([^\r]+)/i.exec(head)?.[1] ?? "",
          body: Buffer.from(body, "latin1"),
        });
      };
      socket.on("close", done);
      socket.on("error", () => undefined);
    });
  }

  it(
    "answers every one without a 5xx that has no declared cause, in the protocol's own error form, and stays small",
    async () => {
      const random = createRandom(seed);
      const agent = new Agent({ keepAlive: true, maxSockets: 8, ca: server.caPem });
      const pid = server.process.pid;
      const warm = rssMiB(pid);
      let peak = warm;
      const sampler = setInterval(() => {
        if (server.process.isRunning()) peak = Math.max(peak, rssMiB(pid));
      }, 200);
      const complaints: string[] = [];
      const statuses = new Map<number, number>();
      let sent = 0;
      let fiveHundreds = 0;
      const started = Date.now();
      async function worker(): Promise<void> {
        while (sent < total) {
          sent += 1;
          const raw = random.int(10) === 0;
          let hostile: HostileRequest | undefined;
          let answer: Outcome | undefined;
          try {
            hostile = raw
              ? rawHostileRequest(random, tokens.get("fuzz/a") as string, random.pick(repositories))
              : hostileRequest(random, tokens);
            answer = raw ? await sendRaw(hostile) : await send(agent, hostile);
          } catch (error) {
            complaints.push(`the test itself failed on ${hostile?.kind ?? "generating"}: ${String(error)}`);
            continue;
          }
          if (!answer) continue;
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          if (answer.status >= 500) fiveHundreds += 1;
          const wrong = complaint(hostile, answer);
          if (wrong) complaints.push(`${hostile.kind} ${hostile.method} ${hostile.path.slice(0, 120)}: ${wrong}`);
        }
      }
      try {
        await Promise.all(Array.from({ length: 8 }, worker));
      } finally {
        clearInterval(sampler);
        agent.destroy();
      }
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const end = rssMiB(pid);
      const figures = {
        seed,
        requests: sent,
        seconds: (Date.now() - started) / 1000,
        fiveHundreds,
        statuses: Object.fromEntries([...statuses].sort(([a], [b]) => a - b)),
        rssMiB: { start: Math.round(warm), peak: Math.round(peak), end: Math.round(end) },
      };
      console.log(`hostile input: ${JSON.stringify(figures)}`);
      expect(complaints.slice(0, 20)).toEqual([]);
      expect(server.process.isRunning()).toBe(true);
      const health = await client.send("GET", "/healthz");
      expect(health.status).toBe(200);
      // Stored images still pull as they were.
      const back = await client.send("GET", "/v2/fuzz/a/manifests/latest", {
        repo: "fuzz/a",
        headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
      });
      expect(back.status).toBe(200);
      // Back near the start: the heap the run needed is reused, not grown (it was 80 -> 250 MiB, peak 440).
      expect(end).toBeLessThan(warm + 64);
      expect(peak).toBeLessThan(256);
    },
    total * 10 + 60_000,
  );
});
