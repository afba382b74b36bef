import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { hostname, networkInterfaces } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { removeTempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

describe("portcullis serve with no configuration", () => {
  let first: PortcullisServe;
  let firstOutput: string;
  let firstCerts: Record<string, string>;
  let second: PortcullisServe;
  let secondOutput: string;

  const readCerts = async (dir: string) =>
    Object.fromEntries(
      await Promise.all(
        ["ca.crt", "ca.key", "server.crt", "server.key"].map(async (f) => [f, await readFile(join(dir, f), "utf8")]),
      ),
    ) as Record<string, string>;

  beforeAll(async () => {
    requireTool("openssl", "openssl");
    first = await startPortcullisServe({ host: "0.0.0.0" });
    firstOutput = await first.output();
    firstCerts = await readCerts(first.certsDir);
    await first.stop();
    second = await startPortcullisServe({ host: "0.0.0.0", home: first.home });
    secondOutput = await second.output();
  });
  afterAll(async () => {
    await second?.stop();
    if (first) await removeTempDir(first.home);
  });

  it("prints the URLs it serves, the CA fingerprint and a checked install one-liner", () => {
    const fingerprint = new X509Certificate(firstCerts["ca.crt"] as string).fingerprint256;
    expect(firstOutput).toContain(`CA SHA-256 fingerprint: ${fingerprint}`);
    expect(firstOutput).toMatch(new RegExp(`https://${hostname()}:${first.port}/`));
    expect(firstOutput).toMatch(
      /curl -fsSkg https:\/\/\S+\/ca\/install\.sh -o portcullis-ca\.sh && echo '[0-9a-f]{64} {2}portcullis-ca\.sh' \| sha256sum -c - && sudo sh portcullis-ca\.sh/,
    );
    expect(firstOutput).toContain("generated a CA");
  });

  it("reuses the same CA and server certificate on the next start", async () => {
    expect(await readCerts(second.certsDir)).toEqual(firstCerts);
    expect(secondOutput).not.toContain("generated a CA");
    expect(secondOutput).not.toContain("issued a server certificate");
  });

  it("keeps every key readable by its owner only", async () => {
    for (const key of ["ca.key", "server.key"]) {
      expect((await stat(join(second.certsDir, key))).mode & 0o777, key).toBe(0o600);
    }
  });

  it("issues a server certificate that openssl verifies against the CA", () => {
    const out = execFileSync("openssl", [
      "verify",
      "-CAfile",
      join(second.certsDir, "ca.crt"),
      join(second.certsDir, "server.crt"),
    ]);
    expect(out.toString()).toContain(": OK");
  });

  it("covers the host name and every local interface address", () => {
    const cert = new X509Certificate(firstCerts["server.crt"] as string);
    expect(cert.checkHost(hostname())).toBeDefined();
    expect(cert.checkHost("localhost")).toBeDefined();
    const addresses = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && !(a.family === "IPv6" && a.address.startsWith("fe80:")))
      .map((a) => a!.address);
    expect(addresses).toContain("127.0.0.1");
    for (const address of addresses) expect(cert.checkIP(address), address).toBeDefined();
  });
});
