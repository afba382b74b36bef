import { execFile } from "node:child_process";
import { mkdir, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkStorage } from "../../src/registry/fsck.js";
import { createFilesystemDriver } from "../../src/registry/storage/filesystem.js";
import { cliPath } from "../support/portcullis-serve.js";
import { pushImage } from "../support/registry-requests.js";
import { startRegistryUnderTest, type RegistryUnderTest } from "../support/registry-under-test.js";

const run = promisify(execFile);
const v2 = (root: string) => join(root, "docker/registry/v2");
const hourAgo = () => new Date(Date.now() - 60 * 60 * 1000);

async function fsck(root: string, ...flags: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [cliPath, "fsck", "--data", root, ...flags]);
    return { code: 0, stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string };
    return { code: failed.code, stdout: failed.stdout };
  }
}

describe("portcullis fsck", () => {
  let registry: RegistryUnderTest;
  let digest: string;

  beforeEach(async () => {
    registry = await startRegistryUnderTest();
    const pushed = await pushImage(registry.url, "team/app", "v1");
    digest = pushed.digest;
  });
  afterEach(async () => registry?.stop());

  it("finds nothing in a store only the registry wrote", async () => {
    const { code, stdout } = await fsck(registry.root);
    expect(stdout).toContain("is consistent");
    expect(code).toBe(0);
  });

  it("finds each kind of damage a crash or a hand leaves, repairs what is safe, and then finds nothing", async () => {
    const root = v2(registry.root);
    const repo = join(root, "repositories/team/app");
    // A tag whose current link never got written (a push killed before its last rename).
    await mkdir(join(repo, "_manifests/tags/half/index/sha256", "a".repeat(64)), { recursive: true });
    await utimes(join(repo, "_manifests/tags/half"), hourAgo(), hourAgo());
    // A tag naming a manifest that is not stored.
    await mkdir(join(repo, "_manifests/tags/lost/current"), { recursive: true });
    await writeFile(join(repo, "_manifests/tags/lost/current/link"), `sha256:${"b".repeat(64)}`);
    // A layer link to a blob that is not there, and a stray temp file beside a link.
    await mkdir(join(repo, "_layers/sha256", "c".repeat(64)), { recursive: true });
    await writeFile(join(repo, "_layers/sha256", "c".repeat(64), "link"), `sha256:${"c".repeat(64)}`);
    const temp = join(repo, "_manifests/tags/v1/current/link.0c8a3c3e-6f0e-4b8e-9a51-2f1d3c4b5a69.tmp");
    await writeFile(temp, "sha256:");
    await utimes(temp, hourAgo(), hourAgo());
    // A blob whose bytes no longer match its digest, and an upload nobody came back for.
    const blobs = await readdir(join(root, "blobs/sha256"));
    const hexes = await readdir(join(root, "blobs/sha256", blobs[0] as string));
    const damaged = join(root, "blobs/sha256", blobs[0] as string, hexes[0] as string, "data");
    await writeFile(damaged, "not what was pushed");
    await mkdir(join(repo, "_uploads/abandoned"), { recursive: true });
    const old = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
    await writeFile(join(repo, "_uploads/abandoned/startedat"), old.toISOString());
    await utimes(join(repo, "_uploads/abandoned/startedat"), old, old);

    const found = await fsck(registry.root, "--json");
    expect(found.code).toBe(1);
    const kinds = found.stdout
      .trim()
      .split("\n")
      .map((line) => (JSON.parse(line) as { kind: string }).kind);
    expect(kinds).toEqual(
      expect.arrayContaining(["tag-dangling", "layer-link-dangling", "temp-file", "blob-corrupt", "upload-abandoned"]),
    );
    expect(kinds.filter((k) => k === "tag-dangling")).toHaveLength(2);

    const repaired = await fsck(registry.root, "--repair");
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toContain("repaired");
    const after = await fsck(registry.root);
    expect(after.stdout).toContain("is consistent");
    expect(after.code).toBe(0);
    // What the registry still serves is whole: the manifest whose blob was damaged is gone, not served wrong.
    const res = await fetch(`${registry.url}/v2/team/app/tags/list`);
    const tags = ((await res.json()) as { tags: string[] }).tags;
    for (const tag of tags) {
      const got = await fetch(`${registry.url}/v2/team/app/manifests/${tag}`, { method: "HEAD" });
      expect(got.status, tag).toBe(200);
    }
    expect(digest).toMatch(/^sha256:/);
  });

  it("leaves a half-made tag alone while it is young: a push may still be writing it", async () => {
    const repo = join(v2(registry.root), "repositories/team/app");
    await mkdir(join(repo, "_manifests/tags/young/index"), { recursive: true });
    const problems = await checkStorage(createFilesystemDriver(registry.root), { repair: true });
    expect(problems).toEqual([]);
    await rm(join(repo, "_manifests/tags/young"), { recursive: true });
  });
});
