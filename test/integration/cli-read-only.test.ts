import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPortcullis, treeOf } from "../support/cli-run.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

let empty: TempDir;
beforeAll(async () => {
  empty = await makeTempDir("portcullis-empty-");
});
afterAll(async () => {
  await empty.stop();
});

describe("read-only commands in a directory that holds no server", () => {
  it.each([
    [["ca", "show"], "--certs DIR"],
    [["ca", "export"], "--certs DIR"],
    [["ca", "export", "--der"], "--certs DIR"],
    [["user", "list"], "--certs DIR"],
    [["user", "list", "--json"], "--certs DIR"],
    [["audit"], "--data DIR"],
    [["audit", "--json"], "--data DIR"],
    [["audit", "verify"], "--data DIR"],
    [["policy", "check", "alice", "team/app", "push"], "--certs DIR"],
    [["token", "rotate"], "--certs DIR"],
    [["fsck"], "--data DIR"],
    [["fsck", "--json"], "--data DIR"],
    [["ca", "renew"], "--certs DIR"],
  ])("`portcullis %j` creates nothing, exits 2 and names %s", async (args, flag) => {
    const before = await treeOf(empty.path);
    const result = await runPortcullis(args, { cwd: empty.path });
    expect(await treeOf(empty.path)).toEqual(before);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(flag);
    expect(result.stderr).toContain(empty.path);
    expect(result.stdout).toBe("");
  });

  it("says where it looked when pointed at a directory that does not exist", async () => {
    const result = await runPortcullis(["audit", "verify", "--data", "/nonexistent"], { cwd: empty.path });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("the audit log (audit/) is not in /nonexistent");
    expect(result.stdout).not.toContain("ok");
  });
});
