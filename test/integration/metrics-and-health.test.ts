import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthGatewayUnderTest, type AuthGatewayUnderTest } from "../support/auth-gateway-under-test.js";
import { requireTool } from "../support/tools.js";

let gw: AuthGatewayUnderTest;
beforeAll(async () => {
  gw = await startAuthGatewayUnderTest({ users: { alice: "alice-password" } });
});
afterAll(async () => {
  await gw.stop();
});

/** Parses the Prometheus text format strictly enough to refuse anything a scraper would: sample → value. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  expect(text.endsWith("\n")).toBe(true);
  for (const line of text.trimEnd().split("\n")) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === "TYPE") {
        expect(["counter", "gauge", "histogram", "summary", "untyped"]).toContain(meta[3]);
        typed.add(meta[2] as string);
      }
      continue;
    }
    const sample =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(
        line,
      );
    expect(sample, `not a Prometheus sample line: ${line}`).not.toBeNull();
    const family = (sample![1] as string).replace(/_(bucket|sum|count)$/, "");
    expect(typed.has(family) || typed.has(sample![1] as string), `no # TYPE before ${line}`).toBe(true);
    samples.set(`${sample![1]}${sample![2] ?? ""}`, Number(sample![3]));
  }
  return samples;
}

async function metrics(): Promise<Map<string, number>> {
  const res = await gw.request("/metrics");
  expect(res.status).toBe(200);
  expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(res.body.toString());
}

const sum = (samples: Map<string, number>, prefix: string) =>
  [...samples].filter(([key]) => key.startsWith(prefix)).reduce((total, [, value]) => total + value, 0);

describe("/metrics", () => {
  it("parses as the Prometheus text format, and its counters move with a push and a pull", async () => {
    const before = await metrics();
    const token = JSON.parse(
      (await gw.token("alice", "alice-password", ["repository:m/app:pull,push"])).body.toString(),
    ).token;
    const auth = { Authorization: `Bearer ${token}` };
    const config = Buffer.from("{}");
    const digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    expect(
      (await gw.request(`/v2/m/app/blobs/uploads/?digest=${digest}`, { method: "POST", headers: auth, body: config }))
        .status,
    ).toBe(201);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.empty.v1+json", digest, size: 2 },
      layers: [],
    });
    const put = await gw.request("/v2/m/app/manifests/v1", {
      method: "PUT",
      headers: { ...auth, "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
      body: manifest,
    });
    expect(put.status).toBe(201);
    expect((await gw.request("/v2/m/app/manifests/v1", { headers: auth })).status).toBe(200);
    expect((await gw.request(`/v2/m/app/blobs/${digest}`, { headers: auth })).status).toBe(200);

    const after = await metrics();
    const moved = (prefix: string) => sum(after, prefix) - sum(before, prefix);
    expect(moved('portcullis_http_requests_total{route="manifest.put",method="PUT",status="201"}')).toBe(1);
    expect(moved('portcullis_http_requests_total{route="manifest.get",method="GET",status="200"}')).toBe(1);
    expect(moved('portcullis_http_requests_total{route="blob.get",method="GET",status="200"}')).toBe(1);
    expect(moved('portcullis_tokens_issued_total{grant="basic"}')).toBe(1);
    expect(moved('portcullis_http_received_bytes_total{route="manifest.put"}')).toBeGreaterThanOrEqual(manifest.length);
    expect(moved('portcullis_http_sent_bytes_total{route="manifest.get"}')).toBeGreaterThanOrEqual(manifest.length);
    expect(moved('portcullis_http_request_duration_seconds_count{route="manifest.put"}')).toBe(1);
    expect(after.get("portcullis_uploads_in_flight")).toBe(0);

    await gw.token("alice", "wrong-password", []);
    expect(sum(await metrics(), 'portcullis_auth_failures_total{reason="bad_credentials"}')).toBe(1);
  });
});

describe("/healthz and /readyz", () => {
  it("answers /healthz while the process runs", async () => {
    const res = await gw.request("/healthz");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ status: "ok" });
  });

  it("fails /readyz while the storage root is read-only, and recovers", async () => {
    requireTool("mount", "mount");
    const root = gw.config.data;
    expect((await gw.request("/readyz")).status).toBe(200);
    // Root ignores file modes, so the directory is made read-only the way a failing disk is: a read-only mount.
    execFileSync("mount", ["--bind", root, root]);
    try {
      execFileSync("mount", ["-o", "remount,ro,bind", root]);
      const failing = await gw.request("/readyz");
      expect(failing.status).toBe(503);
      expect(JSON.parse(failing.body.toString())).toEqual({
        status: "unavailable",
        checks: { storage: expect.stringMatching(/not writable: EROFS/), directories: "ok" },
      });
    } finally {
      execFileSync("umount", [root]);
    }
    const recovered = await gw.request("/readyz");
    expect(recovered.status).toBe(200);
    expect(JSON.parse(recovered.body.toString())).toEqual({
      status: "ok",
      checks: { storage: "ok", directories: "ok" },
    });
  });
});
