import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../src/audit/event.js";
import { cliPath } from "../support/portcullis-serve.js";
import { startAuthGatewayUnderTest, type AuthGatewayUnderTest } from "../support/auth-gateway-under-test.js";
import { buildDockerSchema2Image } from "../support/images.js";
import { writeCertDir } from "../support/containers-client.js";
import { copyOverTls } from "../support/skopeo.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

let gw: AuthGatewayUnderTest;
let work: TempDir;
let certDir: string;
const password = "alice-password";

beforeAll(async () => {
  requireTool("skopeo", "skopeo");
  gw = await startAuthGatewayUnderTest({
    users: { alice: password },
    settings: { auth: { groups: { admins: ["alice"] } } },
  });
  work = await makeTempDir("portcullis-audit-");
  certDir = await writeCertDir(join(work.path, "certs.d"), gw.caPem);
});
afterAll(async () => {
  await gw?.stop();
  await work?.stop();
});

/** The records written by `act`, without the chain fields. */
async function recordsOf(act: () => Promise<unknown>): Promise<Omit<AuditRecord, "prev" | "seq" | "time">[]> {
  const before = gw.auditRecords().length;
  await act();
  return gw
    .auditRecords()
    .slice(before)
    .map(({ prev, seq, time, ...rest }) => {
      expect(prev).toMatch(/^[0-9a-f]{64}$/);
      expect(seq).toBeGreaterThan(before);
      expect(new Date(time).toISOString()).toBe(time);
      return rest;
    });
}

const request = expect.objectContaining({ addr: "127.0.0.1", id: expect.any(String) });

describe("the audit log", () => {
  let image: Awaited<ReturnType<typeof buildDockerSchema2Image>>;

  it("records a skopeo push: the login, the token with scopes asked and granted, and the manifest push", async () => {
    image = await buildDockerSchema2Image(join(work.path, "image"), { layerSizes: [2048, 4096] });
    const records = await recordsOf(() =>
      copyOverTls(image.reference, `docker://127.0.0.1:${gw.port}/team/app:v1`, {
        certDir,
        creds: `alice:${password}`,
      }),
    );
    const push = records.filter((r) => r.action === "push");
    expect(push).toEqual([
      {
        action: "push",
        result: "success",
        actor: { name: "alice" },
        request: expect.objectContaining({
          addr: "127.0.0.1",
          method: "PUT",
          useragent: expect.stringMatching(/skopeo|containers/i),
        }),
        target: {
          repository: "team/app",
          tag: "v1",
          digest: image.descriptor.digest,
          mediaType: "application/vnd.docker.distribution.manifest.v2+json",
          size: [...image.blobs.values()].reduce((a, b) => a + b, 0),
        },
      },
    ]);
    expect(records.find((r) => r.action === "login")).toEqual({
      action: "login",
      result: "success",
      actor: { name: "alice", source: "htpasswd" },
      request,
      detail: { grant: "basic" },
    });
    expect(records.find((r) => r.action === "token")).toEqual({
      action: "token",
      result: "success",
      actor: { name: "alice", source: "htpasswd" },
      request,
      detail: {
        grant: "basic",
        requested: ["repository:team/app:pull,push"],
        granted: ["repository:team/app:pull,push"],
      },
    });
  });

  it("records a pull with the digest and media type served", async () => {
    const records = await recordsOf(() =>
      copyOverTls(`docker://127.0.0.1:${gw.port}/team/app:v1`, `dir:${join(work.path, "back")}`, {
        certDir,
        creds: `alice:${password}`,
      }),
    );
    expect(records.filter((r) => r.action === "pull")).toEqual([
      {
        action: "pull",
        result: "success",
        actor: { name: "alice" },
        request: expect.objectContaining({ method: "GET" }),
        target: {
          repository: "team/app",
          tag: "v1",
          digest: image.descriptor.digest,
          mediaType: "application/vnd.docker.distribution.manifest.v2+json",
          size: image.manifests.get(image.descriptor.digest)!.length,
        },
      },
    ]);
  });

  it("records a tag delete", async () => {
    const token = JSON.parse((await gw.token("alice", password, ["repository:team/app:delete"])).body.toString()).token;
    const records = await recordsOf(() =>
      gw.request("/v2/team/app/manifests/v1", { method: "DELETE", headers: { Authorization: `Bearer ${token}` } }),
    );
    expect(records.filter((r) => r.action === "delete")).toEqual([
      {
        action: "delete",
        result: "success",
        actor: { name: "alice" },
        request: expect.objectContaining({ method: "DELETE" }),
        target: { repository: "team/app", tag: "v1" },
      },
    ]);
  });

  it("answers `portcullis audit --repo --action push` with who pushed and when", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [
      cliPath,
      "audit",
      "--data",
      gw.config.data,
      "--certs",
      gw.certsDir,
      "--repo",
      "team/app",
      "--action",
      "push",
    ]);
    const rows = stdout.trimEnd().split("\n");
    expect(rows).toHaveLength(2);
    expect(rows[1]).toMatch(
      /^\d{4}-\d\d-\d\dT[\d:.]+Z\s+alice\s+push\s+success\s+team\/app:v1@sha256:\S+\s+127\.0\.0\.1$/,
    );
  });

  it("records a failed login without the password", async () => {
    const records = await recordsOf(() => gw.token("alice", "a-wrong-guess", []));
    expect(records).toEqual([
      { action: "login", result: "failure", actor: { name: "alice" }, request, detail: { grant: "basic" } },
    ]);
    expect(JSON.stringify(gw.auditRecords())).not.toContain("a-wrong-guess");
  });

  it("records a request the token does not allow as denied", async () => {
    const token = JSON.parse((await gw.token("alice", password, ["repository:team/app:pull"])).body.toString()).token;
    const records = await recordsOf(() =>
      gw.request("/v2/team/app/manifests/v2", { method: "DELETE", headers: { Authorization: `Bearer ${token}` } }),
    );
    expect(records).toEqual([
      {
        action: "denied",
        result: "denied",
        actor: { name: "alice" },
        request: expect.objectContaining({ method: "DELETE" }),
        target: { repository: "team/app" },
        detail: { needed: ["delete"] },
      },
    ]);
  });
});
