import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand } from "./command.js";
import { requireTool } from "./tools.js";

export interface TestCa {
  certFile: string;
  keyFile: string;
  pem: string;
}

const EC_P256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A throwaway CA (EC P-256) made with openssl: its certificate and key in `dir`. */
export async function createTestCa(dir: string, commonName: string): Promise<TestCa> {
  const openssl = requireTool("openssl", "openssl");
  await mkdir(dir, { recursive: true });
  const certFile = join(dir, "ca.pem");
  const keyFile = join(dir, "ca.key");
  await runCommand(openssl, [
    "req",
    "-x509",
    "-new",
    ...EC_P256,
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "2",
    "-subj",
    `/CN=${commonName}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return { certFile, keyFile, pem: await readFile(certFile, "utf8") };
}

/**
 * A server certificate (EC P-256) for 127.0.0.1, an IP SAN, which Node's TLS checks, signed by `ca`: the
 * certificate and its key as `server.crt` and `server.key` in `dir`.
 */
export async function issueServerCertificate(
  dir: string,
  ca: { certFile: string; keyFile: string },
  commonName: string,
): Promise<{ certFile: string; keyFile: string }> {
  const openssl = requireTool("openssl", "openssl");
  await mkdir(dir, { recursive: true });
  const keyFile = join(dir, "server.key");
  const csrFile = join(dir, "server.csr");
  const certFile = join(dir, "server.crt");
  const extFile = join(dir, "server.ext");
  await writeFile(
    extFile,
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
  );
  await runCommand(openssl, [
    "req",
    "-new",
    ...EC_P256,
    "-keyout",
    keyFile,
    "-out",
    csrFile,
    "-subj",
    `/CN=${commonName}`,
  ]);
  await runCommand(openssl, [
    "x509",
    "-req",
    "-in",
    csrFile,
    "-CA",
    ca.certFile,
    "-CAkey",
    ca.keyFile,
    "-set_serial",
    `0x${randomBytes(8).toString("hex")}`,
    "-days",
    "2",
    "-extfile",
    extFile,
    "-out",
    certFile,
  ]);
  return { certFile, keyFile };
}
