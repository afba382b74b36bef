import { createPrivateKey, X509Certificate } from "node:crypto";
import { unwatchFile, watchFile } from "node:fs";
import { readFile } from "node:fs/promises";
import type { CertPaths } from "./tls-material.js";

/**
 * Calls `onChange` with the server certificate and key whenever either file is replaced and the two match
 * again (a renewal writes the key, then the certificate). Returns a function that stops watching.
 */
export function watchServerCertificate(
  paths: Pick<CertPaths, "serverCert" | "serverKey">,
  onChange: (pair: { certChainPem: string; keyPem: string }) => void,
  onError: (error: unknown) => void,
  intervalMs = 500,
): () => void {
  let lastCert = "";
  const check = async () => {
    try {
      const [certChainPem, keyPem] = await Promise.all([
        readFile(paths.serverCert, "utf8"),
        readFile(paths.serverKey, "utf8"),
      ]);
      if (certChainPem === lastCert) return;
      if (!new X509Certificate(certChainPem).checkPrivateKey(createPrivateKey(keyPem))) return;
      lastCert = certChainPem;
      onChange({ certChainPem, keyPem });
    } catch (error) {
      onError(error);
    }
  };
  void readFile(paths.serverCert, "utf8").then(
    (pem) => (lastCert = pem),
    () => undefined,
  );
  const listener = () => void check();
  watchFile(paths.serverCert, { interval: intervalMs }, listener);
  watchFile(paths.serverKey, { interval: intervalMs }, listener);
  return () => {
    unwatchFile(paths.serverCert, listener);
    unwatchFile(paths.serverKey, listener);
  };
}
