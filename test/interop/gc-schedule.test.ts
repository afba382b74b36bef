import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readRecords } from "../../src/audit/reader.js";
import { buildDockerSchema2Image } from "../support/images.js";
import { startServeWithConfig, type ServeWithConfig } from "../support/serve-with-config.js";
import { copyOverTls } from "../support/skopeo.js";
import { storedBlobSizes } from "../support/stored-blobs.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

const blobFiles = async (dataDir: string) => (await storedBlobSizes(dataDir)).length;

describe("gc.intervalMinutes: collection on a schedule in serve", () => {
  let work: TempDir;
  let portcullis: ServeWithConfig;

  beforeAll(async () => {
    requireTool("skopeo", "skopeo");
    work = await makeTempDir("gc-schedule-");
    // 0.02 minutes: a run every 1.2 s, so the test sees two (the first marks candidates, the next removes them).
    portcullis = await startServeWithConfig(
      work.path,
      { gc: { intervalMinutes: 0.02, graceSeconds: 0, untagged: "remove" } },
      { env: { PORTCULLIS_WORKERS: "2" } },
    );
  });

  afterAll(async () => {
    await portcullis?.stop();
    await work?.stop();
  });

  it("gives back a removed image's blobs without anyone running portcullis gc, and audits each run", async () => {
    const { serve, registry } = portcullis;
    const client = portcullis.clientAs(portcullis.admin);
    const image = await buildDockerSchema2Image(join(work.path, "image"), { layerSizes: [64 * 1024] });
    await copyOverTls(image.reference, `docker://${registry}/team/gone:v1`, client);
    expect(await blobFiles(serve.dataDir)).toBeGreaterThan(0);

    const removed = await portcullis.local(["rm", "team/gone:v1"]);
    expect(removed.code).toBe(0);

    const deadline = Date.now() + 60_000;
    while ((await blobFiles(serve.dataDir)) > 0 && Date.now() < deadline) await sleep(250);
    expect(await blobFiles(serve.dataDir)).toBe(0);
    const runs = [...readRecords(join(serve.dataDir, "audit"))]
      .map((r) => r.record)
      .filter((record) => record?.action === "gc");
    expect(runs.length).toBeGreaterThan(0);
    expect(runs.every((record) => record?.actor.source === "schedule")).toBe(true);
    expect(runs.some((record) => Number(record?.detail?.bytes) > 0)).toBe(true);
  });
});
