import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpsRequest } from "../support/https-client.js";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { startRedis, type RedisServer } from "../support/redis.js";
import { makeTempDir, removeTempDir, type TempDir } from "../support/temp-dir.js";

let redis: RedisServer;
let work: TempDir;
const gateways: PortcullisServe[] = [];

beforeAll(async () => {
  redis = await startRedis();
  work = await makeTempDir("portcullis-shared-limits-");
  const config = join(work.path, "portcullis.yaml");
  await writeFile(
    config,
    `redis:\n  url: ${redis.url}\nrateLimits:\n  tokenRequestsPerIp: { points: 12, durationSeconds: 120 }\n`,
  );
  for (let i = 0; i < 2; i++) gateways.push(await startPortcullisServe({ args: ["--config", config] }));
});
afterAll(async () => {
  for (const gateway of gateways) {
    await gateway.stop();
    await removeTempDir(gateway.home);
  }
  await redis?.stop();
  await work?.stop();
});

describe("rate limits shared through Redis", () => {
  it("limits token requests split across two gateway processes at the same total as one", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const gateway = gateways[i % 2] as PortcullisServe;
      const basic = Buffer.from(`admin:${gateway.adminPassword}`).toString("base64");
      const res = await httpsRequest(`${gateway.url}/token?service=portcullis`, {
        ca: gateway.caPem,
        headers: { Authorization: `Basic ${basic}` },
      });
      statuses.push(res.status);
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(12);
    expect(statuses.slice(12).every((s) => s === 429)).toBe(true);
  });
});
