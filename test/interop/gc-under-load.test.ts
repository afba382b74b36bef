import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDockerSchema2Image, contentSummary, type BuiltImage } from "../support/images.js";
import { startServeWithConfig, type ServeWithConfig } from "../support/serve-with-config.js";
import { copyOverTls, pullOverTls } from "../support/skopeo.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

const LOAD_MS = 60_000;

describe("gc under load", () => {
  let work: TempDir;
  let portcullis: ServeWithConfig;

  beforeAll(async () => {
    requireTool("skopeo", "skopeo");
    work = await makeTempDir("gc-under-load-");
    portcullis = await startServeWithConfig(work.path, {
      auth: { groups: { admins: ["admin"] } },
      policies: [{ group: "admins", repository: "*", actions: ["*"] }],
      gc: { untagged: "remove", graceSeconds: 0 },
      rateLimits: { tokenRequestsPerIp: { points: 100_000, durationSeconds: 60 } },
    });
  });

  afterAll(async () => {
    await portcullis?.stop();
    await work?.stop();
  });

  it("lets 4 clients push, pull and rm for 60 s while gc runs every 5 s and removes untagged manifests, with no client error, and every tagged image still pulls byte-identical", async () => {
    const { registry, local } = portcullis;
    const client = portcullis.clientAs(portcullis.admin);
    const shared = await buildDockerSchema2Image(join(work.path, "shared"), { layerSizes: [32 * 1024, 4 * 1024] });
    const errors: string[] = [];
    const tagged = new Map<string, BuiltImage>();
    const gcBytes: number[] = [];
    let pulls = 0;
    const deadline = Date.now() + LOAD_MS;

    const clientLoop = async (n: number) => {
      const repo = `team/c${n}`;
      const mine: string[] = [];
      for (let i = 0; Date.now() < deadline; i++) {
        const image =
          i % 4 === 1
            ? shared
            : await buildDockerSchema2Image(join(work.path, `c${n}-${i}`), { layerSizes: [24 * 1024, 2 * 1024] });
        const ref = `${repo}:t${i}`;
        try {
          await copyOverTls(image.reference, `docker://${registry}/${ref}`, client);
          tagged.set(ref, image);
          mine.push(ref);
          const back = mine[Math.floor(Math.random() * mine.length)]!;
          const out = join(work.path, `pull-c${n}-${i}`);
          const pulled = await pullOverTls(`docker://${registry}/${back}`, out, client);
          pulls++;
          if (JSON.stringify(contentSummary(pulled)) !== JSON.stringify(contentSummary(tagged.get(back)!)))
            errors.push(`pull of ${back} differs from what was pushed`);
          await rm(out, { recursive: true, force: true });
          if (i % 3 === 2 && mine.length > 2) {
            const old = mine.shift()!;
            // A manifest of its own goes with its tag (so gc has layers to take); the shared image keeps its
            // manifest, which the client's other tags on it still need.
            const removed = await local(["rm", old, ...(tagged.get(old) === shared ? [] : ["--all-tags"])]);
            if (removed.code !== 0) errors.push(`rm ${old}: exit ${removed.code}: ${removed.stderr}`);
            tagged.delete(old);
          }
        } catch (error) {
          errors.push(`client ${n} ${ref}: ${String(error)}`);
        }
      }
    };

    const gcLoop = async () => {
      while (Date.now() < deadline) {
        const started = Date.now();
        const run = await local(["gc", "--json", "--settle", "2"]);
        if (run.code !== 0) errors.push(`gc exit ${run.code}: ${run.stderr}`);
        else gcBytes.push((JSON.parse(run.stdout) as { gc: { bytes: number } }).gc.bytes);
        await new Promise((r) => setTimeout(r, Math.max(0, 5000 - (Date.now() - started))));
      }
    };

    await Promise.all([clientLoop(0), clientLoop(1), clientLoop(2), clientLoop(3), gcLoop()]);
    expect(errors).toEqual([]);
    expect(pulls).toBeGreaterThan(0);
    expect(
      gcBytes.some((b) => b > 0),
      `gc bytes per run: ${gcBytes.join(",")}`,
    ).toBe(true);

    const final = await local(["gc", "--json", "--settle", "1"]);
    expect(final.code, final.stderr).toBe(0);
    for (const [ref, image] of tagged) {
      const out = join(work.path, `final-${ref.replace(/[/:]/g, "-")}`);
      expect(contentSummary(await pullOverTls(`docker://${registry}/${ref}`, out, client)), ref).toEqual(
        contentSummary(image),
      );
    }
  }, 150_000);
});
