import { mkdir, readFile, writeFile } from "node:fs/promises";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writePublic, writeSecret } from "../../src/fs/atomic-file.js";
import { certPaths } from "../../src/pki/tls-material.js";
import { certificateNames, generateRsaKey, issueCertificate } from "../../src/pki/x509.js";
import { runPortcullis } from "../support/cli-run.js";
import { freePort } from "../support/free-port.js";
import { mountReadOnly } from "../support/read-only-mount.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

interface Finding {
  check: string;
  status: "ok" | "warn" | "fail";
  message: string;
  fix?: string;
}

let work: TempDir;
beforeAll(async () => {
  work = await makeTempDir("portcullis-doctor-");
});
afterAll(async () => {
  await work.stop();
});

/** A server home made by `init` (its storage root created), on a free loopback port; `auth` is merged into its config. */
async function server(name: string, auth: Record<string, unknown> = {}): Promise<Home> {
  const home = join(work.path, name);
  const config = join(home, "portcullis.yaml");
  const port = await freePort();
  const init = await runPortcullis(["init", "--yes", "--config", config, "--listen", `127.0.0.1:${port}`]);
  expect(init.code, init.stderr).toBe(0);
  const doc = parseYaml(await readFile(config, "utf8")) as { auth: Record<string, unknown> };
  await writeFile(config, stringifyYaml({ ...doc, auth: { ...doc.auth, ...auth } }));
  await mkdir(join(home, "data"));
  return { config, certs: join(home, "certs"), data: join(home, "data") };
}

interface Home {
  config: string;
  certs: string;
  data: string;
}

/** Replaces the server certificate with one the test makes, signed by the server's own CA. */
async function replaceCertificate(certs: string, names: string[], days: number, from = new Date()): Promise<void> {
  const paths = certPaths(certs);
  const key = generateRsaKey(2048);
  const ca = { certPem: await readFile(paths.caCert, "utf8"), keyPem: await readFile(paths.caKey, "utf8") };
  const subject = { commonName: "localhost" };
  const cert = issueCertificate({
    subject,
    publicKeyPem: key.publicKeyPem,
    issuer: ca,
    days,
    kind: "server",
    names,
    now: from,
  });
  await writeSecret(paths.serverKey, key.privateKeyPem);
  await writePublic(paths.serverCert, cert);
}

async function doctor(config: string): Promise<{ code: number; findings: Finding[]; text: string }> {
  const json = await runPortcullis(["doctor", "--config", config, "--json"]);
  const text = await runPortcullis(["doctor", "--config", config]);
  const findings = json.stdout
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line) as Finding);
  return { code: json.code, findings, text: text.stdout };
}

const failed = (findings: Finding[], check: string) => findings.filter((f) => f.check === check && f.status === "fail");

describe("portcullis doctor on the server", () => {
  it("passes a fresh server, naming what it checked", async () => {
    const { config } = await server("healthy");
    const { code, findings } = await doctor(config);
    expect(findings.filter((f) => f.status === "fail")).toEqual([]);
    expect(code).toBe(0);
    expect(findings.map((f) => f.check)).toEqual(expect.arrayContaining(["certificate", "clock", "storage", "port"]));
  });

  it("finds a certificate that misses an address of this machine, and says to renew it", async () => {
    const { config, certs } = await server("missing-address");
    await replaceCertificate(certs, ["localhost", "127.0.0.1"], 60);
    const { code, findings, text } = await doctor(config);
    const [finding] = failed(findings, "certificate");
    const address =
      Object.values(networkInterfaces())
        .flat()
        .find((a) => a && !a.internal && a.family === "IPv4")?.address ?? "::1";
    expect(finding?.message).toMatch(/^the server certificate does not cover /);
    expect(finding?.message).toContain(address);
    expect(finding?.message).toContain("doesn't contain any IP SANs");
    expect(finding?.fix).toContain(`portcullis ca renew --config ${config}`);
    expect(text).toMatch(/FAIL {2}certificate .*does not cover/);
    expect(code).toBe(1);
  });

  it("finds an expired certificate, and says to renew it", async () => {
    const { config, certs } = await server("expired");
    const names = certificateNames(await readFile(certPaths(certs).serverCert, "utf8"));
    await replaceCertificate(certs, names, 1, new Date(Date.now() - 10 * 24 * 60 * 60 * 1000));
    const { code, findings } = await doctor(config);
    const expired = failed(findings, "certificate").find((f) => /expired/.test(f.message));
    expect(expired?.message).toContain("x509: certificate has expired");
    expect(expired?.fix).toContain("portcullis ca renew");
    expect(code).toBe(1);
  });

  it("finds a storage root that takes no writes, and says what to make writable", async () => {
    const { config, data } = await server("read-only");
    const mount = await mountReadOnly(data);
    try {
      const { code, findings } = await doctor(config);
      const [finding] = failed(findings, "storage");
      expect(finding?.message).toContain(`storage ${data} is not writable: EROFS`);
      expect(finding?.fix).toContain("ReadWritePaths=");
      expect(code).toBe(1);
    } finally {
      await mount.stop();
    }
  });

  it("finds an LDAP directory that does not answer, and says what to check", async () => {
    // A port nothing listens on: the directory is down.
    const port = await freePort();
    const { config } = await server("ldap-down", {
      ldap: { url: `ldap://127.0.0.1:${port}`, userBase: "ou=people,dc=example,dc=org", timeoutMs: 1000 },
    });
    const { code, findings } = await doctor(config);
    const [finding] = failed(findings, "ldap");
    expect(finding?.message).toContain(`ldap://127.0.0.1:${port} did not answer`);
    expect(finding?.message).toContain("htpasswd users still can");
    expect(finding?.fix).toContain("auth.ldap.url");
    expect(code).toBe(1);
  });
});
