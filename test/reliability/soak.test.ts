import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PortcullisServe } from "../support/portcullis-serve.js";
import { childPids } from "../support/processes.js";
import { startPortcullisServe } from "../support/portcullis-serve.js";
import { createRandom } from "./support/hostile-requests.js";
import { createRegistryClient, sha256, type PushedImage, type RegistryClient } from "./support/registry-client.js";

/** RELIABILITY_LONG=1 soaks for 10 minutes; CI for 60 s. */
const seconds = process.env.RELIABILITY_LONG ? 600 : 60;
const seed = Number(process.env.RELIABILITY_SEED ?? Date.now() % 1_000_000);
const lanes = 4;

/** RSS of the server and its workers, in MiB. */
function treeRssMiB(pid: number): number {
  const rss = (p: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0) / 1024;
  return rss(pid) + childPids(pid).reduce((sum, child) => sum + rss(child), 0);
}

describe(`a ${seconds} s soak of mixed push, pull and delete (seed ${seed})`, () => {
  let server: PortcullisServe;
  let client: RegistryClient;

  beforeAll(async () => {
    server = await startPortcullisServe({ env: { PORTCULLIS_WORKERS: "2" } });
    client = createRegistryClient({ url: server.url, ca: server.caPem, user: "admin", password: server.adminPassword });
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
  });

  it(
    "serves every request without an error, and its memory stays bounded",
    async () => {
      const random = createRandom(seed);
      let bytesPushed = 0;
      let bytesPulled = 0;
      const errors: string[] = [];
      const pushWith = async (repo: string, tag: string, layers: Buffer[]) => {
        const image = await client.pushImage(repo, tag, layers);
        bytesPushed += layers.reduce((sum, l) => sum + l.length, 0) + image.manifest.length;
        return image;
      };
      await pushWith("soak/warm", "v0", [randomBytes(1024)]);
      const start = treeRssMiB(server.process.pid);
      let peak = start;
      const sampler = setInterval(() => (peak = Math.max(peak, treeRssMiB(server.process.pid))), 500);
      const deadline = Date.now() + seconds * 1000;

      async function lane(index: number): Promise<void> {
        const repo = `soak/lane${index}`;
        const stored: PushedImage[] = [];
        for (let serial = 0; Date.now() < deadline; serial++) {
          const roll = random.int(10);
          try {
            if (roll < 5 || stored.length === 0) {
              const layers = Array.from({ length: 1 + random.int(3) }, () =>
                randomBytes(1_000 + random.int(2_000_000)),
              );
              stored.push(await pushWith(repo, `t${serial}`, layers));
            } else if (roll < 9) {
              const image = random.pick(stored);
              const manifest = await client.send("GET", `/v2/${repo}/manifests/${image.tag}`, {
                repo,
                headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
              });
              if (!manifest.body.equals(image.manifest))
                errors.push(`${repo}:${image.tag} answered ${manifest.status}`);
              for (const [digest, content] of image.blobs) {
                const blob = await client.send("GET", `/v2/${repo}/blobs/${digest}`, { repo });
                bytesPulled += blob.body.length;
                if (sha256(blob.body) !== sha256(content)) errors.push(`${repo}@${digest} answered ${blob.status}`);
              }
            } else {
              const image = stored.splice(random.int(stored.length), 1)[0] as PushedImage;
              const gone = await client.send("DELETE", `/v2/${repo}/manifests/${image.digest}`, { repo });
              if (gone.status !== 202) errors.push(`DELETE ${repo}@${image.digest} answered ${gone.status}`);
              const after = await client.send("GET", `/v2/${repo}/manifests/${image.tag}`, { repo });
              if (after.status !== 404) errors.push(`${repo}:${image.tag} answered ${after.status} after its delete`);
            }
          } catch (error) {
            errors.push(String(error));
          }
        }
      }

      try {
        await Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)));
      } finally {
        clearInterval(sampler);
      }
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const end = treeRssMiB(server.process.pid);
      const figures = {
        seed,
        seconds,
        requests: client.requests(),
        bytesPushed,
        bytesPulled,
        errors: errors.length,
        rssMiB: { start: Math.round(start), peak: Math.round(peak), end: Math.round(end) },
      };
      console.log(`soak: ${JSON.stringify(figures)}`);
      expect(errors.slice(0, 10)).toEqual([]);
      expect(server.process.isRunning()).toBe(true);
      expect(end).toBeLessThan(start + 200);
    },
    seconds * 1000 + 60_000,
  );
});
