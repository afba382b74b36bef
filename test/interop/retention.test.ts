import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { describeRule } from "../../src/registry/retention.js";
import { runPortcullis } from "../support/cli-run.js";
import { writeCertDir, writeContainersClientConfig } from "../support/containers-client.js";
import { buildDockerSchema2Image } from "../support/images.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { copyOverTls } from "../support/skopeo.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

const rule = { repository: "team/*", keepNewest: 10, protect: ["v*"] };
const vTags = ["v1", "v2", "v3", "v4", "v5"];
const bTags = Array.from({ length: 25 }, (_, i) => `b${String(i + 1).padStart(2, "0")}`);
const removed = bTags.slice(0, 15);
const kept = [...vTags, ...bTags.slice(15)].sort();

describe("retention rules on a serving registry", () => {
  let work: TempDir;
  let serve: PortcullisServe;
  let config: string;

  beforeAll(async () => {
    requireTool("skopeo", "skopeo");
    work = await makeTempDir("retention-");
    config = join(work.path, "portcullis.yaml");
    await writeFile(
      config,
      stringify({
        auth: { groups: { admins: ["admin"] } },
        policies: [{ group: "admins", repository: "*", actions: ["*"] }],
        gc: { untagged: "remove", graceSeconds: 0 },
        retention: [rule],
      }),
    );
    serve = await startPortcullisServe({ args: ["--config", config] });
    const registry = `127.0.0.1:${serve.port}`;
    const client = {
      ...(await writeContainersClientConfig(work.path, { registry })),
      certDir: await writeCertDir(join(work.path, "certs.d"), serve.caPem),
    };
    const image = await buildDockerSchema2Image(join(work.path, "app"), { layerSizes: [4 * 1024] });
    for (const tag of [...vTags, ...bTags]) {
      await copyOverTls(image.reference, `docker://${registry}/team/app:${tag}`, {
        ...client,
        creds: `admin:${serve.adminPassword}`,
      });
    }
  }, 180_000);

  afterAll(async () => {
    await serve?.stop();
    if (serve) await removeTempDir(serve.home);
    await work?.stop();
  });

  const local = (args: string[]) =>
    runPortcullis([...args, "--data", serve.dataDir, "--certs", serve.certsDir, "--config", config]);
  const tagsThroughApi = async () => {
    const listed = await runPortcullis(
      ["ls", "team/app", "--json", "--server", serve.url, "--certs", serve.certsDir, "--config", config],
      { env: { ...process.env, PORTCULLIS_USERNAME: "admin", PORTCULLIS_PASSWORD: serve.adminPassword } },
    );
    expect(listed.code, listed.stderr).toBe(0);
    return (JSON.parse(listed.stdout) as { tag: string }[]).map((i) => i.tag).sort();
  };

  it("dry-run lists exactly the 15 oldest unprotected tags with the rule and removes nothing", async () => {
    const dry = await local(["gc", "--dry-run", "--json"]);
    expect(dry.code, dry.stderr).toBe(0);
    const report = JSON.parse(dry.stdout) as { retention: { repository: string; tag: string; rule: string }[] };
    expect(report.retention.map((r) => r.tag).sort()).toEqual(removed);
    for (const r of report.retention)
      expect(r).toMatchObject({ repository: "team/app", rule: describeRule(rule as never) });
    expect(await tagsThroughApi()).toEqual([...vTags, ...bTags].sort());
  });

  it("gc keeps the 10 newest unprotected tags and every v* tag, and audits each removal naming the rule", async () => {
    const run = await local(["gc", "--json", "--settle", "0"]);
    expect(run.code, run.stderr).toBe(0);
    expect(await tagsThroughApi()).toEqual(kept);
    const audit = await local(["audit", "--action", "delete", "--json"]);
    expect(audit.code, audit.stderr).toBe(0);
    type Rec = {
      action: string;
      target?: { repository?: string; tag?: string };
      detail?: { reason?: string; rule?: string };
    };
    const text = audit.stdout.trim();
    const records: Rec[] = text.startsWith("[")
      ? (JSON.parse(text) as Rec[])
      : text
          .split("\n")
          .filter((l) => l.trim() !== "")
          .map((l) => JSON.parse(l) as Rec);
    const byRule = records.filter(
      (r) =>
        r.action === "delete" && r.target?.repository === "team/app" && r.detail?.rule === describeRule(rule as never),
    );
    expect(byRule.map((r) => r.target?.tag).sort()).toEqual(removed);
  });
});
