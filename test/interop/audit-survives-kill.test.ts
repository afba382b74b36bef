import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditDir } from "../../src/audit/audit-log.js";
import { readRecords, verifyChain } from "../../src/audit/reader.js";
import { httpsRequest } from "../support/https-client.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { fetchToken } from "../support/registry-token.js";
import { removeTempDir } from "../support/temp-dir.js";

const emptyConfig = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const workers = 6;

let serve: PortcullisServe;
beforeAll(async () => {
  serve = await startPortcullisServe();
});
afterAll(async () => {
  await serve?.stop();
  if (serve) await removeTempDir(serve.home);
});

describe("the audit log when the server is killed under load", () => {
  it("holds a record of every push and pull the clients saw succeed", async () => {
    const repositories = Array.from({ length: workers }, (_, i) => `kill/app-${i}`);
    const token = await fetchToken(
      serve.url,
      serve.caPem,
      "admin",
      serve.adminPassword,
      repositories.map((r) => `repository:${r}:pull,push`),
    );
    const auth = { Authorization: `Bearer ${token}` };
    for (const repository of repositories) {
      const res = await httpsRequest(`${serve.url}/v2/${repository}/blobs/uploads/?digest=${emptyConfig}`, {
        method: "POST",
        ca: serve.caPem,
        headers: auth,
        body: "{}",
      });
      expect(res.status).toBe(201);
    }

    const seen: { action: "push" | "pull"; repository: string; tag: string; digest: string }[] = [];
    let stopping = false;
    const worker = async (repository: string) => {
      for (let n = 0; !stopping; n++) {
        const tag = `t${n}`;
        const manifest = JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: { mediaType: "application/vnd.oci.empty.v1+json", digest: emptyConfig, size: 2 },
          layers: [],
          annotations: { n: String(n), repository },
        });
        try {
          const put = await httpsRequest(`${serve.url}/v2/${repository}/manifests/${tag}`, {
            method: "PUT",
            ca: serve.caPem,
            headers: { ...auth, "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
            body: manifest,
          });
          if (put.status === 201)
            seen.push({ action: "push", repository, tag, digest: put.headers["docker-content-digest"] as string });
          const get = await httpsRequest(`${serve.url}/v2/${repository}/manifests/${tag}`, {
            ca: serve.caPem,
            headers: auth,
          });
          if (get.status === 200)
            seen.push({ action: "pull", repository, tag, digest: get.headers["docker-content-digest"] as string });
        } catch {
          return; // the server is gone
        }
      }
    };
    const running = repositories.map(worker);
    await sleep(1500);
    process.kill(serve.process.pid, "SIGKILL");
    stopping = true;
    await Promise.all(running);
    await serve.process.exited;

    expect(seen.filter((s) => s.action === "push").length).toBeGreaterThan(20);
    const records = [...readRecords(auditDir(serve.dataDir))].flatMap((entry) => (entry.record ? [entry.record] : []));
    const recorded = new Set(
      records
        .filter((r) => (r.action === "push" || r.action === "pull") && r.result === "success")
        .map((r) => `${r.action} ${r.target?.repository}:${r.target?.tag}@${r.target?.digest}`),
    );
    const missing = seen
      .map((s) => `${s.action} ${s.repository}:${s.tag}@${s.digest}`)
      .filter((key) => !recorded.has(key));
    expect(missing).toEqual([]);
    expect(verifyChain(auditDir(serve.dataDir))).toMatchObject({ ok: true });
  });
});
