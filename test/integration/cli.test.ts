import { X509Certificate } from "node:crypto";
import { access, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPortcullis, type CliResult } from "../support/cli-run.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

let home: TempDir;
beforeAll(async () => {
  home = await makeTempDir("portcullis-cli-");
  const init = await runPortcullis(
    ["init", "--yes", "--data", join(home.path, "data"), "--certs", join(home.path, "certs")],
    { cwd: home.path },
  );
  expect(init.code, init.stderr).toBe(0);
});
afterAll(async () => {
  await home.stop();
});

/** Runs the built CLI on this test's server (its config, data and certs). */
function portcullis(args: string[], input?: string): Promise<CliResult> {
  return runPortcullis([...args, "--data", join(home.path, "data"), "--certs", join(home.path, "certs")], {
    cwd: home.path,
    input,
  });
}

describe("the command line", () => {
  it("manages users with passwords from stdin, never from arguments, in a 0600 file", async () => {
    expect((await portcullis(["user", "add", "alice"], "alice-password\nalice-password\n")).code).toBe(0);
    expect((await portcullis(["user", "add", "bob"], "bob-password\n")).code).toBe(0);
    const list = await portcullis(["user", "list"]);
    expect(list.stdout).toBe("admin\tadmins\nalice\nbob\n");
    expect((await stat(join(home.path, "certs", "htpasswd"))).mode & 0o777).toBe(0o600);
    const mismatch = await portcullis(["user", "passwd", "alice"], "one-password\nanother-password\n");
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toContain("two identical lines");
    expect((await portcullis(["user", "rm", "bob"])).code).toBe(0);
    expect((await portcullis(["user", "list"])).stdout).toBe("admin\tadmins\nalice\n");
    expect((await portcullis(["user", "add", "alice"], "x-password\n")).stderr).toContain(
      'already exists: use "portcullis user passwd alice"',
    );
  });

  it("says which policy rule decided, and exits 1 when the asked action is denied", async () => {
    const allowed = await portcullis(["policy", "check", "alice", "team/app", "push"]);
    expect(allowed.stdout).toContain("alice on team/app: pull, push");
    expect(allowed.stdout).toContain("because policies[1] (account * on *: pull, push) matched (the default policy");
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

  it("removes admin-password once the password it holds is changed", async () => {
    const file = join(home.path, "certs", "admin-password");
    await access(file);
    const changed = await portcullis(["user", "passwd", "admin"], "a-new-admin-password\n");
    expect(changed.code).toBe(0);
    expect(changed.stdout).toContain(`removed ${file}: it held the old password`);
    await expect(access(file)).rejects.toThrow(/ENOENT/);
  });

  it("renews the server certificate for a valid extra name only, and records it in the audit log", async () => {
    const bad = await portcullis(["ca", "renew", "--name", "bad name!"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--name "bad name!": expected a DNS name');
    const renewed = await portcullis(["ca", "renew", "--name", "extra.example"]);
    expect(renewed.code, renewed.stderr).toBe(0);
    const cert = new X509Certificate(await readFile(join(home.path, "certs", "server.crt")));
    expect(cert.subjectAltName).toContain("DNS:extra.example");
    const records = await portcullis(["audit", "--action", "ca.renew", "--json"]);
    expect(JSON.parse(records.stdout) as { detail: { names: string[] } }).toMatchObject({
      action: "ca.renew",
      detail: { names: expect.arrayContaining(["extra.example"]) as string[] },
    });
  });

  it("refuses an htpasswd file with a hash it does not accept, naming the line", async () => {
    const certs = join(home.path, "bad-users");
    await mkdir(certs, { recursive: true });
    await writeFile(join(certs, "htpasswd"), "carol:$apr1$abcdefgh$0123456789abcdefghijkl\n");
    const res = await runPortcullis(["user", "list", "--certs", certs], { cwd: certs });
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
