import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import type { PortcullisServe } from "../support/portcullis-serve.js";
import {
  auditVerifyProblem,
  buildKillShim,
  clientFor,
  expectListingsServable,
  expectPullable,
  killAt,
  repairAndRecheck,
  startServer,
  tempFilesUnder,
} from "./support/crash-harness.js";
import { randomBytes } from "node:crypto";
import type { PushedImage } from "./support/registry-client.js";

/**
 * Each named point of the write path, killed on entry to its system call (a preloaded shim sends SIGKILL):
 * after a restart every acknowledged push pulls byte-identical, no listing shows what cannot be fetched,
 * `audit verify` passes, and fsck --repair leaves nothing behind.
 */
const points: { name: string; call: string; path: string }[] = [
  { name: "session start (startedat written in place)", call: "write,pwrite", path: "/startedat" },
  { name: "an upload's data write", call: "write,pwrite", path: "/_uploads/" },
  { name: "the fsync before a blob commit", call: "fsync", path: "/_uploads/" },
  { name: "the blob commit (upload data renamed into blobs/)", call: "rename", path: "/_uploads/" },
  { name: "the layer link", call: "rename", path: "/_layers/" },
  { name: "the manifest's blob bytes", call: "write,pwrite", path: "/blobs/" },
  { name: "the manifest's blob", call: "rename", path: "/data." },
  { name: "the manifest's revision link", call: "rename", path: "/revisions/" },
  { name: "the tag's index link", call: "rename", path: "/index/" },
  { name: "the tag's current link", call: "rename", path: "/current/" },
  { name: "a storage lock taken", call: "link", path: "/locks/" },
  { name: "a storage lock released", call: "unlink", path: "/locks/" },
  { name: "an audit record's line", call: "write", path: "/audit.log" },
  { name: "the audit head after its line", call: "pwrite,ftruncate", path: "/audit.head" },
  { name: "the audit lock taken", call: "link", path: "/audit.lock" },
];

describe("a server killed at each named point of the write path", () => {
  let home: TempDir;
  let shim: string;
  const acknowledged: PushedImage[] = [];
  let serial = 0;

  beforeAll(async () => {
    home = await makeTempDir("portcullis-rel-crash-");
    shim = await buildKillShim(home.path);
    await mkdir(join(home.path, "tmp"));
    const first = await startServer(home.path, { TMPDIR: join(home.path, "tmp") });
    const client = clientFor(first);
    acknowledged.push(await client.pushImage("crash/base", "v0", [randomBytes(4096)]));
    client.close();
    await first.stop();
  });

  afterAll(async () => {
    await home?.stop();
  });

  async function pushUntilKilled(server: PortcullisServe): Promise<void> {
    const client = clientFor(server);
    try {
      for (let round = 0; round < 20 && server.process.isRunning(); round++) {
        serial += 1;
        const layers = [randomBytes(1024 + (serial % 7) * 40_000), randomBytes(300)];
        try {
          acknowledged.push(await client.pushImage(`crash/r${serial % 3}`, `t${serial}`, layers));
        } catch {
          // The push the kill cut short: not acknowledged, so nothing is promised about it.
        }
      }
    } finally {
      client.close();
    }
  }

  for (const point of points) {
    it(`keeps every acknowledged push when killed at ${point.name}`, async () => {
      const tmp = join(home.path, "tmp");
      const doomed = await startServer(home.path, { ...killAt(shim, point.call, point.path), TMPDIR: tmp });
      await pushUntilKilled(doomed);
      if (doomed.process.isRunning()) await doomed.stop();
      const exit = await doomed.process.exited;
      expect(exit.signal, `the point ${point.call} ${point.path} was reached`).toBe("SIGKILL");
      // Before anything writes again: a restart's next record would hide a head left behind.
      expect(await auditVerifyProblem(doomed.dataDir)).toBeUndefined();

      const server = await startServer(home.path, { TMPDIR: tmp });
      const client = clientFor(server);
      try {
        expect(await expectPullable(client, acknowledged)).toEqual([]);
        expect(await expectListingsServable(client)).toEqual([]);
        expect(await auditVerifyProblem(server.dataDir)).toBeUndefined();
        const { repaired, left } = await repairAndRecheck(server.dataDir);
        // A blob whose bytes do not match its digest is a partial blob made visible.
        expect(repaired.filter((p) => p.kind === "blob-corrupt")).toEqual([]);
        expect(left).toEqual([]);
        expect(await tempFilesUnder(join(server.dataDir, "docker"))).toEqual([]);
        expect(await expectPullable(client, acknowledged)).toEqual([]);
        // A push after the restart works, on the same repositories and locks.
        acknowledged.push(await client.pushImage("crash/r0", `after-${serial}`, [randomBytes(2048)]));
        expect(await readdir(tmp)).toEqual([]);
      } finally {
        client.close();
        await server.stop();
      }
    });
  }
});
