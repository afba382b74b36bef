import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cliPath } from "../support/portcullis-serve.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

let home: TempDir;
beforeAll(async () => {
  home = await makeTempDir("portcullis-cli-");
});
afterAll(async () => {
  await home.stop();
});

/** Runs the built CLI on this test's data and certs; resolves with the exit code and output. */
function portcullis(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [cliPath, ...args, "--data", join(home.path, "data"), "--certs", join(home.path, "certs")],
      { cwd: home.path },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input);
  });
}

describe("the command line", () => {
  it("manages users with passwords from stdin, never from arguments, in a 0600 file", async () => {
    expect((await portcullis(["user", "add", "alice"], "alice-password\nalice-password\n")).code).toBe(0);
    expect((await portcullis(["user", "add", "bob"], "bob-password\n")).code).toBe(0);
    const list = await portcullis(["user", "list"]);
    expect(list.stdout).toBe("alice\nbob\n");
    expect((await stat(join(home.path, "certs", "htpasswd"))).mode & 0o777).toBe(0o600);
    const mismatch = await portcullis(["user", "passwd", "alice"], "one-password\nanother-password\n");
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toContain("two identical lines");
    expect((await portcullis(["user", "rm", "bob"])).code).toBe(0);
    expect((await portcullis(["user", "list"])).stdout).toBe("alice\n");
    expect((await portcullis(["user", "add", "alice"], "x-password\n")).stderr).toContain(
      'already exists: use "portcullis user passwd alice"',
    );
  });

  it("says which policy rule decided, and exits 1 when the asked action is denied", async () => {
    const allowed = await portcullis(["policy", "check", "alice", "team/app", "push"]);
    expect(allowed.stdout).toContain("alice on team/app: pull, push");
    expect(allowed.stdout).toContain("because rule 2 (account * on *: pull, push) matched (the default policy");
    expect(allowed.code).toBe(0);
    const denied = await portcullis(["policy", "check", "alice", "team/app", "delete"]);
    expect(denied.stdout).toContain("delete: denied");
    expect(denied.code).toBe(1);
  });

  it("shows and exports the CA the server uses", async () => {
    const shown = await portcullis(["ca", "show"]);
    expect(shown.code).toBe(0);
    const pem = await readFile(join(home.path, "certs", "ca.crt"), "utf8");
    expect(shown.stdout).toContain(`CA SHA-256 fingerprint: ${new X509Certificate(pem).fingerprint256}`);
    expect(shown.stdout).toMatch(/covers: +localhost, 127\.0\.0\.1/);
    expect((await portcullis(["ca", "export"])).stdout).toBe(pem);
    const out = join(home.path, "ca.der");
    expect((await portcullis(["ca", "export", "--der", "--out", out])).code).toBe(0);
    expect((await readFile(out)).equals(new X509Certificate(pem).raw)).toBe(true);
  });

  it("refuses an htpasswd file with a hash it does not accept, naming the line", async () => {
    const certs = join(home.path, "bad-users");
    await mkdir(certs, { recursive: true });
    await writeFile(join(certs, "htpasswd"), "carol:$apr1$abcdefgh$0123456789abcdefghijkl\n");
    const res = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(process.execPath, [cliPath, "user", "list", "--certs", certs], (error, _stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stderr }),
      ),
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('line 1 (user "carol"): only bcrypt hashes are accepted');
  });

  it("refuses to run the unauthenticated registry layer off loopback", async () => {
    const res = await portcullis(["registry", "--listen", "0.0.0.0:0", "--root", join(home.path, "root")]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("listens on loopback (127.0.0.1, ::1) or a unix socket only");
  });

  it("names the key of a bad configuration and exits 2", async () => {
    const file = join(home.path, "bad.yaml");
    await writeFile(file, "tls:\n  renewBeforeDays: soon\n");
    const res = await portcullis(["serve", "--config", file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("tls.renewBeforeDays");
  });

  it("answers an unknown command with the usage and exit code 2", async () => {
    const res = await portcullis(["frobnicate"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('unknown command "frobnicate"');
  });
});
