import { execFile, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuditLog } from "../../src/audit/audit-log.js";
import { commands } from "../../src/cli/commands.js";
import { runPortcullis } from "../support/cli-run.js";
import { cliPath } from "../support/portcullis-serve.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

/** Every command and every subcommand, as the words that name it: `["ca"]`, `["ca", "show"]`. */
const topics: [string, string[]][] = commands.flatMap((c) => [
  [c.name, [c.name]] as [string, string[]],
  ...(c.subcommands ?? []).map((s) => [`${c.name} ${s.name}`, [c.name, s.name]] as [string, string[]]),
]);

describe("help on every command", () => {
  it.each(topics)("`portcullis %s --help` shows its usage and an example, and exits 0", async (label, words) => {
    const result = await runPortcullis([...words, "--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^portcullis ${label}: `));
    expect(result.stdout).toMatch(/usage:\n {2}portcullis /);
    expect(result.stdout).toMatch(/examples?:\n {2}portcullis /);
  });

  it.each(commands.map((c) => c.name))("`portcullis %s -h` and `help` show what --help shows", async (name) => {
    const long = await runPortcullis([name, "--help"]);
    expect(await runPortcullis([name, "-h"])).toEqual(long);
    expect(await runPortcullis(["help", name])).toEqual(long);
  });

  it("prints the version for --version, -V and version", async () => {
    for (const arg of ["--version", "-V", "version"]) {
      expect(await runPortcullis([arg])).toEqual({ code: 0, stdout: `portcullis ${pkg.version}\n`, stderr: "" });
    }
  });

  it("lists every command for --help, -h and help", async () => {
    for (const args of [["--help"], ["-h"], ["help"], []]) {
      const result = await runPortcullis(args);
      expect(result.code).toBe(0);
      for (const command of commands) expect(result.stdout).toContain(`  ${command.name} `);
    }
  });

  it("answers help for a command that does not exist with exit 2", async () => {
    const result = await runPortcullis(["help", "frobnicate"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no command "frobnicate"');
  });
});

describe("listings as JSON", () => {
  let home: TempDir;
  let at: string[];
  beforeAll(async () => {
    home = await makeTempDir("portcullis-json-");
    at = ["--config", join(home.path, "portcullis.yaml")];
    const init = await runPortcullis(["init", "--yes", ...at], { cwd: home.path });
    expect(init.code, init.stderr).toBe(0);
    expect((await runPortcullis(["user", "add", "alice", ...at], { input: "alice-password\n" })).code).toBe(0);
    const audit = createAuditLog({ dataDir: join(home.path, "data") });
    for (let i = 0; i < 3000; i++)
      audit.record({ action: "pull", result: "success", actor: { name: "alice" }, target: { repository: `app/${i}` } });
    audit.record({
      action: "token",
      result: "success",
      actor: { name: "alice" },
      detail: { grant: "basic", requested: ["repository:app:pull,push"], granted: ["repository:app:pull"] },
    });
    audit.close();
  });
  afterAll(async () => {
    await home.stop();
  });

  it.each([
    [["user", "list", "--json"]],
    [["audit", "--json"]],
    [["audit", "--json", "--limit", "5"]],
    [["policy", "check", "alice", "app", "push", "--json"]],
  ])("`portcullis %j` prints one JSON object per line", async (args) => {
    const result = await runPortcullis([...args, ...at]);
    expect(result.stderr).toBe("");
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
  });

  it("keeps only the last records with --limit, and shows the scopes a token was asked for and granted", async () => {
    const table = await runPortcullis(["audit", "--limit", "2", ...at]);
    const rows = table.stdout.trimEnd().split("\n");
    expect(rows).toHaveLength(3);
    expect(rows[2]).toContain("repository:app:pull (asked repository:app:pull,push)");
  });

  it("refuses an --action the log never records, listing those it does", async () => {
    const result = await runPortcullis(["audit", "--action", "pusj", ...at]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--action pusj: not an action the audit log records; one of login, token, push");
  });

  it("ends quietly with 0 when the reader closes the pipe: `audit --json | head -1`", async () => {
    const command = `set -o pipefail; "${process.execPath}" "${cliPath}" audit --json ${at.join(" ")} | head -1`;
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile("bash", ["-c", command], (error, out, err) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout: out, stderr: err }),
      ),
    );
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(JSON.parse(stdout) as { seq: number }).toMatchObject({ seq: 1 });
  });

  it("keeps printing records as they are written with --follow", async () => {
    const child = spawn(process.execPath, [cliPath, "audit", "--follow", "--json", "--user", "bob", ...at]);
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    try {
      await sleep(1000);
      const audit = createAuditLog({ dataDir: join(home.path, "data") });
      audit.record({ action: "push", result: "success", actor: { name: "bob" }, target: { repository: "app" } });
      audit.record({ action: "push", result: "success", actor: { name: "alice" }, target: { repository: "app" } });
      audit.close();
      for (let i = 0; i < 50 && !out.includes("\n"); i++) await sleep(100);
      expect(
        out
          .trimEnd()
          .split("\n")
          .map((line) => JSON.parse(line) as { actor: { name: string } }),
      ).toEqual([expect.objectContaining({ action: "push", actor: { name: "bob" } })]);
    } finally {
      child.kill();
    }
  });

  it("prints the config's JSON Schema", async () => {
    const result = await runPortcullis(["config", "schema"]);
    const schema = JSON.parse(result.stdout) as { properties: Record<string, unknown>; additionalProperties: boolean };
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["listen", "tls", "auth", "policies"]));
  });
});
