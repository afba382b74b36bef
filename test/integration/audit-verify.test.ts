import { execFile } from "node:child_process";
import { appendFile, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditDir, createAuditLog } from "../../src/audit/audit-log.js";
import { verifyChain } from "../../src/audit/reader.js";
import { cliPath } from "../support/portcullis-serve.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

let home: TempDir;
let dir: string;

/** Writes 30 records into a log that rotates every ~1.5 KiB, so the chain spans several files. */
beforeEach(async () => {
  home = await makeTempDir("portcullis-verify-");
  const audit = createAuditLog({ dataDir: join(home.path, "data"), maxBytes: 1500 });
  for (let i = 0; i < 30; i++) {
    audit.record({
      action: "push",
      result: "success",
      actor: { name: i % 2 ? "alice" : "bob" },
      target: { repository: `team/app${i % 3}`, tag: `v${i}` },
    });
  }
  audit.close();
  dir = auditDir(join(home.path, "data"));
});
afterEach(async () => {
  await home.stop();
});

async function portcullis(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [
      cliPath,
      ...args,
      "--data",
      join(home.path, "data"),
      "--certs",
      join(home.path, "certs"),
    ]);
    return { code: 0, stdout };
  } catch (error) {
    const failure = error as { code: number; stdout: string };
    return { code: failure.code, stdout: failure.stdout };
  }
}

async function rotatedFile(): Promise<string> {
  const names = (await readdir(dir)).filter((n) => /^audit-.*\.log$/.test(n)).sort();
  expect(names.length).toBeGreaterThanOrEqual(2);
  return join(dir, names[1] as string);
}

async function editLines(file: string, edit: (lines: string[]) => void): Promise<void> {
  const lines = (await readFile(file, "utf8")).trimEnd().split("\n");
  edit(lines);
  await writeFile(file, `${lines.join("\n")}\n`);
}

describe("portcullis audit verify", () => {
  it("passes an untouched log that spans rotated files", async () => {
    const { code, stdout } = await portcullis("audit", "verify");
    expect(stdout).toBe(`ok: 30 records in ${dir}, the chain is intact\n`);
    expect(code).toBe(0);
  });

  it("names an edited line of a rotated file", async () => {
    const file = await rotatedFile();
    await editLines(
      file,
      (lines) => (lines[1] = (lines[1] as string).replace('"alice"', '"mallory"').replace('"bob"', '"mallory"')),
    );
    const { code, stdout } = await portcullis("audit", "verify");
    expect(code).toBe(1);
    expect(stdout).toMatch(new RegExp(`BROKEN: ${file.split("/").pop()} line 2: line 2 of .* was changed`));
  });

  it("names where a line was deleted", async () => {
    const file = await rotatedFile();
    await editLines(file, (lines) => lines.splice(1, 1));
    const { code, stdout } = await portcullis("audit", "verify");
    expect(code).toBe(1);
    expect(stdout).toMatch(
      new RegExp(`BROKEN: ${file.split("/").pop()} line 2: line 2 holds record \\d+ where record \\d+ belongs`),
    );
  });

  it("names where lines were swapped", async () => {
    const file = await rotatedFile();
    await editLines(file, (lines) => ([lines[1], lines[2]] = [lines[2] as string, lines[1] as string]));
    const { code, stdout } = await portcullis("audit", "verify");
    expect(code).toBe(1);
    expect(stdout).toContain(`BROKEN: ${file.split("/").pop()} line 2:`);
  });

  it("notices an edited last record and removed last records", async () => {
    await editLines(
      join(dir, "audit.log"),
      (lines) => (lines[lines.length - 1] = (lines.at(-1) as string).replace('"success"', '"failure"')),
    );
    expect((await portcullis("audit", "verify")).stdout).toMatch(/the last record\) was changed/);
    await editLines(join(dir, "audit.log"), (lines) => lines.pop());
    expect((await portcullis("audit", "verify")).stdout).toMatch(/the last records were removed/);
  });

  it("notices a whole rotated file removed", async () => {
    await rm(await rotatedFile());
    const { code, stdout } = await portcullis("audit", "verify");
    expect(code).toBe(1);
    expect(stdout).toMatch(/where record \d+ belongs/);
  });
});

describe("portcullis audit", () => {
  it("answers who pushed a repository, as a table and as JSON", async () => {
    const table = await portcullis("audit", "--repo", "team/app1", "--action", "push");
    const rows = table.stdout.trimEnd().split("\n");
    expect(rows[0]).toMatch(/^TIME\s+ACTOR\s+ACTION\s+RESULT\s+TARGET\s+FROM$/);
    expect(rows).toHaveLength(11);
    expect(rows[1]).toMatch(/^\d{4}-\d\d-\d\dT\S+Z\s+alice\s+push\s+success\s+team\/app1:v1\b/);
    const json = await portcullis("audit", "--user", "bob", "--json");
    const records = json.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(records).toHaveLength(15);
    expect(records.every((r) => r.actor.name === "bob")).toBe(true);
  });

  it("refuses a --since it cannot read, saying what it takes", async () => {
    const result = await portcullis("audit", "--since", "yesterday-ish");
    expect(result.code).toBe(2);
  });
});

describe("several writers and damaged files", () => {
  it("keeps every record when another writer rotates the file under the server", async () => {
    const data = join(home.path, "two-writers");
    let today = new Date("2026-11-24T23:00:00Z");
    const server = createAuditLog({ dataDir: data, now: () => today });
    server.record({ action: "login", result: "success", actor: { name: "alice" } });
    today = new Date("2026-11-25T08:00:00Z");
    const admin = createAuditLog({ dataDir: data, now: () => today });
    admin.record({
      action: "user.add",
      result: "success",
      actor: { name: "root", source: "cli" },
      target: { user: "bob" },
    });
    admin.close();
    server.record({ action: "login", result: "success", actor: { name: "bob" } });
    server.close();
    expect(verifyChain(auditDir(data))).toEqual({ ok: true, records: 3 });
  });

  it("goes on writing after a torn last line, which verify then names", async () => {
    const data = join(home.path, "torn");
    const audit = createAuditLog({ dataDir: data });
    audit.record({ action: "login", result: "success", actor: { name: "alice" } });
    await appendFile(join(auditDir(data), "audit.log"), '{"time":"2026-11-24T00:00:00Z","action":"lo');
    audit.record({ action: "login", result: "success", actor: { name: "bob" } });
    audit.close();
    const result = verifyChain(auditDir(data));
    expect(result).toMatchObject({ ok: false, line: 2 });
  });
});
