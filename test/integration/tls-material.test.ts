import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema, type Config } from "../../src/config/schema.js";
import { ensureTlsMaterial } from "../../src/pki/tls-material.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

let dir: TempDir;
const file = (name: string) => join(dir.path, name);
const configWith = (tls: Record<string, unknown>, names: string[] = []): Config =>
  configSchema.parse({ certs: join(dir.path, `certs-${Math.random()}`), tls: { ...tls, names } });
const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir.path, stdio: "pipe" });

beforeAll(async () => {
  requireTool("openssl", "openssl");
  dir = await makeTempDir("portcullis-pki-");
  // An operator's own CA, made with openssl as operators do, with its key encrypted.
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-days",
    "30",
    "-subj",
    "/CN=Corp CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-keyout",
    "corp-ca.key",
    "-out",
    "corp-ca.crt",
    "-passout",
    "pass:s3cret",
  );
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-days",
    "30",
    "-nodes",
    "-subj",
    "/CN=other",
    "-keyout",
    "other.key",
    "-out",
    "other.crt",
  );
  // A server certificate signed by that CA, for registry.corp.example.
  openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=registry.corp.example",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
  );
  await writeFile(file("san.ext"), "subjectAltName=DNS:registry.corp.example,IP:10.1.2.3\n");
  openssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "corp-ca.crt",
    "-CAkey",
    "corp-ca.key",
    "-passin",
    "pass:s3cret",
    "-CAcreateserial",
    "-days",
    "30",
    "-extfile",
    "san.ext",
    "-out",
    "server.crt",
  );
});
afterAll(async () => {
  await dir.stop();
});

describe("loading existing TLS material", () => {
  it("signs the server certificate with an operator's CA whose key is encrypted", async () => {
    const config = configWith({
      ca: { cert: file("corp-ca.crt"), key: file("corp-ca.key"), keyPassphraseEnv: "CA_PASS" },
    });
    const material = await ensureTlsMaterial({ config, env: { CA_PASS: "s3cret" }, names: ["localhost", "127.0.0.1"] });
    const server = new X509Certificate(material.certChainPem);
    expect(server.verify(new X509Certificate(await readFile(file("corp-ca.crt"))).publicKey)).toBe(true);
    expect(material.caCertPem).toBe(await readFile(file("corp-ca.crt"), "utf8"));
  });

  it("uses an existing server certificate, key and chain as they are", async () => {
    const config = configWith(
      { server: { cert: file("server.crt"), key: file("server.key"), chain: file("corp-ca.crt") } },
      ["registry.corp.example"],
    );
    const material = await ensureTlsMaterial({ config });
    expect(material.certChainPem).toContain((await readFile(file("server.crt"), "utf8")).trim());
    expect(material.caCertPem?.trim()).toBe((await readFile(file("corp-ca.crt"), "utf8")).trim());
    expect(material.warnings).toEqual([]);
  });
});

describe("bad TLS material gives a clear error", () => {
  it("names a key that does not match its certificate", async () => {
    const config = configWith({ server: { cert: file("server.crt"), key: file("other.key") } });
    await expect(ensureTlsMaterial({ config })).rejects.toThrow(/tls\.server\.key .* does not match tls\.server\.cert/);
  });

  it("names an expired certificate and when it expired", async () => {
    const config = configWith({ server: { cert: file("server.crt"), key: file("server.key") } });
    const later = () => new Date(Date.now() + 60 * 24 * 60 * 60 * 1000);
    await expect(ensureTlsMaterial({ config, now: later })).rejects.toThrow(/tls\.server\.cert .* expired on \d{4}-/);
  });

  it("names a file it cannot read", async () => {
    const config = configWith({ ca: { cert: file("missing.crt"), key: file("corp-ca.key") } });
    await expect(ensureTlsMaterial({ config })).rejects.toThrow(/cannot read tls\.ca\.cert .*missing\.crt.*ENOENT/);
  });

  it("warns, naming the name, when a configured name is not covered", async () => {
    const config = configWith({ server: { cert: file("server.crt"), key: file("server.key") } }, [
      "registry.corp.example",
      "other.example",
    ]);
    const material = await ensureTlsMaterial({ config });
    expect(material.warnings).toEqual([expect.stringContaining("does not cover other.example")]);
  });

  it("says an encrypted CA key needs its passphrase variable", async () => {
    const config = configWith({ ca: { cert: file("corp-ca.crt"), key: file("corp-ca.key") } });
    await expect(ensureTlsMaterial({ config, env: {} })).rejects.toThrow(
      /tls\.ca\.key .* is encrypted and no passphrase was given/,
    );
  });

  it("says when a passphrase does not open the CA key", async () => {
    const config = configWith({
      ca: { cert: file("corp-ca.crt"), key: file("corp-ca.key"), keyPassphraseEnv: "CA_PASS" },
    });
    await expect(ensureTlsMaterial({ config, env: { CA_PASS: "wrong" } })).rejects.toThrow(
      /the passphrase did not open it/,
    );
  });

  it("refuses a CA certificate that is not a CA", async () => {
    const config = configWith({ ca: { cert: file("server.crt"), key: file("server.key") } });
    await expect(ensureTlsMaterial({ config })).rejects.toThrow(/is not a CA certificate/);
  });
});

describe("server certificate renewal", () => {
  it("issues a new certificate when a name is added, and keeps it otherwise", async () => {
    const config = configWith({});
    const first = await ensureTlsMaterial({ config, names: ["localhost"] });
    const same = await ensureTlsMaterial({ config, names: ["localhost"] });
    expect(same.certChainPem).toBe(first.certChainPem);
    expect(same.actions).toEqual([]);
    const more = await ensureTlsMaterial({ config, names: ["localhost", "new.example"] });
    expect(more.certChainPem).not.toBe(first.certChainPem);
    expect(more.actions[0]).toMatch(/did not cover new\.example/);
    expect(new X509Certificate(more.certChainPem).checkHost("new.example")).toBeDefined();
  });

  it("renews a certificate that is near expiry", async () => {
    const config = configWith({});
    const first = await ensureTlsMaterial({ config, names: ["localhost"] });
    const soon = () => new Date(Date.now() + 380 * 24 * 60 * 60 * 1000);
    const renewed = await ensureTlsMaterial({ config, names: ["localhost"], now: soon });
    expect(renewed.certChainPem).not.toBe(first.certChainPem);
    expect(renewed.actions[0]).toMatch(/near expiry/);
  });
});
