import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeRule } from "../../src/registry/retention.js";
import { buildDockerSchema2Image } from "../support/images.js";
import { startServeWithConfig, type ServeWithConfig } from "../support/serve-with-config.js";
import { copyOverTls } from "../support/skopeo.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

const rule = { repository: "team/*", keepNewest: 10, protect: ["v*"] };
const vTags = ["v1", "v2", "v3", "v4", "v5"];
const bTags = Array.from({ length: 25 }, (_, i) => `b${String(i + 1).padStart(2, "0")}`);
const removed = bTags.slice(0, 15);
const kept = [...vTags, ...bTags.slice(15)].sort();

describe("retention rules on a serving registry", () => {
  let work: TempDir;
  let portcullis: ServeWithConfig;

  beforeAll(async () => {
    requireTool("skopeo", "skopeo");
    work = await makeTempDir("retention-");
    portcullis = await startServeWithConfig(work.path, {
      auth: { groups: { admins: ["admin"] } },
      policies: [{ group: "admins", repository: "*", actions: ["*"] }],
      gc: { untagged: "remove", graceSeconds: 0 },
      retention: [rule],
    });
    const image = await buildDockerSchema2Image(join(work.path, "app"), { layerSizes: [4 * 1024] });
    for (const tag of [...vTags, ...bTags]) {
      await copyOverTls(
        image.reference,
        `docker://${portcullis.registry}/team/app:${tag}`,
        portcullis.clientAs(portcullis.admin),
      );
    }
  }, 180_000);

  afterAll(async () => {
    await portcullis?.stop();
    await work?.stop();
  });

  const tagsThroughApi = async () => {
    const listed = await portcullis.remote(portcullis.admin, ["ls", "team/app", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    return (JSON.parse(listed.stdout) as { tag: string }[]).map((i) => i.tag).sort();
  };

  it("dry-run lists exactly the 15 oldest unprotected tags with the rule and removes nothing", async () => {
    const dry = await portcullis.local(["gc", "--dry-run", "--json"]);
    expect(dry.code, dry.stderr).toBe(0);
    const report = JSON.parse(dry.stdout) as { retention: { repository: string; tag: string; rule: string }[] };
    expect(report.retention.map((r) => r.tag).sort()).toEqual(removed);
    for (const r of report.retention)
      expect(r).toMatchObject({ repository: "team/app", rule: describeRule(rule as never) });
    expect(await tagsThroughApi()).toEqual([...vTags, ...bTags].sort());
  });

  it("gc keeps the 10 newest unprotected tags and every v* tag, and audits each removal naming the rule", async () => {
    const run = await portcullis.local(["gc", "--json", "--settle", "0"]);
    expect(run.code, run.stderr).toBe(0);
    expect(await tagsThroughApi()).toEqual(kept);
    const audit = await portcullis.local(["audit", "--action", "delete", "--json"]);
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
