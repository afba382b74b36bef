import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Config } from "../config/schema.js";
import { writePublic, writeSecret } from "../fs/atomic-file.js";
import { readIfExists } from "../fs/read-if-exists.js";
import { machineNames } from "./host-names.js";
import {
  certificateCovers,
  certificateNames,
  generateEcKey,
  generateRsaKey,
  issueCertificate,
  sha256Fingerprint,
} from "./x509.js";

export class PkiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PkiError";
  }
}

export interface TlsMaterial {
  /** The CA clients must trust (PEM), when we know it. */
  caCertPem?: string;
  caFingerprint?: string;
  /** Server certificate followed by its chain, as the TLS server sends it. */
  certChainPem: string;
  keyPem: string;
  /** Names and addresses the served certificate covers of those we were asked to cover. */
  names: string[];
  notAfter: Date;
  /** What was done to get here, for the console: "generated a CA", "renewed the server certificate", … */
  actions: string[];
  warnings: string[];
}

export interface CertPaths {
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
}

export function certPaths(certsDir: string): CertPaths {
  return {
    caCert: join(certsDir, "ca.crt"),
    caKey: join(certsDir, "ca.key"),
    serverCert: join(certsDir, "server.crt"),
    serverKey: join(certsDir, "server.key"),
  };
}

const day = 24 * 60 * 60 * 1000;
const caDays = 3650;

export interface EnsureOptions {
  config: Pick<Config, "certs" | "tls" | "publicUrl">;
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
  /** Issue a new server certificate even when the current one is still good. */
  forceRenew?: boolean;
  /** The names to cover; the machine's own names and the configured ones by default. */
  names?: readonly string[];
}

/**
 * Loads or creates everything TLS needs: with `tls.server` the given certificate as it is; otherwise a CA
 * (given with `tls.ca`, or generated once in the certs directory) and a server certificate it signs, renewed
 * when it nears expiry, stops covering a wanted name, or was signed by another CA.
 */
export async function ensureTlsMaterial(options: EnsureOptions): Promise<TlsMaterial> {
  const { config } = options;
  const now = options.now?.() ?? new Date();
  const names = options.names ?? wantedNames(config);
  if (config.tls.server) return loadProvidedServer(config.tls.server, options.names ?? configuredNames(config), now);

  const paths = certPaths(config.certs);
  const actions: string[] = [];
  const ca = config.tls.ca
    ? await loadProvidedCa(config.tls.ca, options.env ?? process.env, now)
    : await loadOrCreateCa(paths, actions);

  let certPem = await readIfExists(paths.serverCert);
  let keyPem = await readIfExists(paths.serverKey);
  const reason = options.forceRenew
    ? "renewal was asked for"
    : certPem && keyPem
      ? staleReason(certPem, keyPem, ca.certPem, names, now, config.tls.renewBeforeDays)
      : "there was none";
  if (reason) {
    const key = generateEcKey();
    certPem = issueCertificate({
      subject: { commonName: names.find((n) => !/^[\d.:]+$/.test(n)) ?? "localhost", organization: "Portcullis" },
      publicKeyPem: key.publicKeyPem,
      issuer: { certPem: ca.certPem, keyPem: ca.keyPem },
      days: config.tls.serverCertDays,
      kind: "server",
      names,
    });
    keyPem = key.privateKeyPem;
    await writeSecret(paths.serverKey, keyPem);
    await writePublic(paths.serverCert, certPem);
    actions.push(`issued a server certificate for ${names.join(", ")} (${reason})`);
  }
  return {
    caCertPem: ca.certPem,
    caFingerprint: sha256Fingerprint(ca.certPem),
    certChainPem: certPem as string,
    keyPem: keyPem as string,
    names: [...names],
    notAfter: new Date(new X509Certificate(certPem as string).validTo),
    actions,
    warnings: [],
  };
}

/**
 * What the server has now, read without creating or changing anything (for `ca show`, `ca export` and
 * `doctor`); undefined when the certs directory holds no CA, i.e. no server has started there. `names` are
 * those the certificate lists.
 */
export async function readTlsMaterial(
  config: Pick<Config, "certs" | "tls">,
): Promise<(Omit<TlsMaterial, "certChainPem" | "keyPem"> & { certChainPem?: string }) | undefined> {
  if (config.tls.server) return loadProvidedServer(config.tls.server, [], new Date());
  const paths = certPaths(config.certs);
  const caCertPem = config.tls.ca
    ? await readMaterial(config.tls.ca.cert, "tls.ca.cert")
    : await readIfExists(paths.caCert);
  if (!caCertPem) return undefined;
  const certPem = await readIfExists(paths.serverCert);
  return {
    caCertPem,
    caFingerprint: sha256Fingerprint(caCertPem),
    ...(certPem ? { certChainPem: certPem } : {}),
    names: certPem ? certificateNames(certPem) : [],
    notAfter: certPem ? new Date(new X509Certificate(certPem).validTo) : new Date(0),
    actions: [],
    warnings: certPem ? [] : [`no server certificate in ${paths.serverCert} yet: portcullis serve issues one`],
  };
}

/** The CA that signs token-signing certificates, when it exists; never creates one. */
export async function readSigningCa(
  config: Pick<Config, "certs" | "tls">,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ certPem: string; keyPem: string } | undefined> {
  if (config.tls.ca) return loadProvidedCa(config.tls.ca, env, new Date());
  const paths = certPaths(config.certs);
  const [certPem, keyPem] = [await readIfExists(paths.caCert), await readIfExists(paths.caKey)];
  return certPem && keyPem ? { certPem, keyPem } : undefined;
}

/** The machine's own names and addresses, and those the operator configured. */
export function wantedNames(config: Pick<Config, "tls" | "publicUrl">): string[] {
  return [...new Set([...machineNames(), ...configuredNames(config)])];
}

/**
 * The CA that issues token-signing certificates: the operator's (`tls.ca`) or our own in the certs
 * directory, created when missing (also when `tls.server` supplies the TLS certificate).
 */
export async function loadSigningCa(
  config: Pick<Config, "certs" | "tls">,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ certPem: string; keyPem: string }> {
  return config.tls.ca ? loadProvidedCa(config.tls.ca, env, new Date()) : loadOrCreateCa(certPaths(config.certs), []);
}

function configuredNames(config: Pick<Config, "tls" | "publicUrl">): string[] {
  const names = config.tls.names.map((n) => n.toLowerCase());
  if (config.publicUrl) names.push(new URL(config.publicUrl).hostname.replace(/^\[|\]$/g, "").toLowerCase());
  return names;
}

function staleReason(
  certPem: string,
  keyPem: string,
  caPem: string,
  names: readonly string[],
  now: Date,
  renewBeforeDays: number,
): string | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return "its key did not match";
  } catch {
    return "the stored one could not be read";
  }
  if (!cert.verify(new X509Certificate(caPem).publicKey)) return "it was signed by another CA";
  if (new Date(cert.validTo).getTime() - now.getTime() < renewBeforeDays * day) return "it was near expiry";
  const missing = names.filter((name) => !certificateCovers(certPem, name));
  if (missing.length > 0) return `it did not cover ${missing.join(", ")}`;
  return undefined;
}

async function loadOrCreateCa(paths: CertPaths, actions: string[]): Promise<{ certPem: string; keyPem: string }> {
  const certPem = await readIfExists(paths.caCert);
  const keyPem = await readIfExists(paths.caKey);
  if (certPem && keyPem) return { certPem, keyPem };
  if (certPem || keyPem) {
    throw new PkiError(
      `${certPem ? paths.caKey : paths.caCert} is missing but ${certPem ? paths.caCert : paths.caKey} exists: ` +
        "restore the missing file, or remove both to generate a new CA (clients will have to trust it again)",
    );
  }
  const key = generateRsaKey(3072);
  const created = issueCertificate({
    subject: { commonName: `Portcullis CA (${hostname()})`, organization: "Portcullis" },
    publicKeyPem: key.publicKeyPem,
    selfKeyPem: key.privateKeyPem,
    days: caDays,
    kind: "ca",
  });
  await writeSecret(paths.caKey, key.privateKeyPem);
  await writePublic(paths.caCert, created);
  actions.push(`generated a CA in ${paths.caCert}`);
  return { certPem: created, keyPem: key.privateKeyPem };
}

async function readMaterial(path: string, key: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new PkiError(
      `cannot read ${key} (${path}): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

function parseCertificate(pem: string, key: string, path: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new PkiError(`${key} (${path}) is not a PEM certificate`);
  }
}

function checkValidity(cert: X509Certificate, key: string, path: string, now: Date): void {
  if (new Date(cert.validTo) <= now)
    throw new PkiError(
      `${key} (${path}) expired on ${new Date(cert.validTo).toISOString()}: renew it or remove the setting`,
    );
  if (new Date(cert.validFrom) > now)
    throw new PkiError(
      `${key} (${path}) is not valid until ${new Date(cert.validFrom).toISOString()}: check the clock`,
    );
}

async function loadProvidedCa(
  settings: NonNullable<Config["tls"]["ca"]>,
  env: NodeJS.ProcessEnv,
  now: Date,
): Promise<{ certPem: string; keyPem: string }> {
  const certPem = await readMaterial(settings.cert, "tls.ca.cert");
  const encryptedPem = await readMaterial(settings.key, "tls.ca.key");
  const cert = parseCertificate(certPem, "tls.ca.cert", settings.cert);
  checkValidity(cert, "tls.ca.cert", settings.cert, now);
  const passphrase = settings.keyPassphraseEnv ? env[settings.keyPassphraseEnv] : undefined;
  if (settings.keyPassphraseEnv && passphrase === undefined) {
    throw new PkiError(
      `tls.ca.keyPassphraseEnv names ${settings.keyPassphraseEnv}, but that environment variable is not set`,
    );
  }
  let key;
  try {
    key = createPrivateKey({ key: encryptedPem, ...(passphrase !== undefined ? { passphrase } : {}) });
  } catch (error) {
    const encrypted = /ENCRYPTED/.test(encryptedPem);
    throw new PkiError(
      encrypted
        ? `tls.ca.key (${settings.key}) is encrypted and ${passphrase === undefined ? "no passphrase was given: set tls.ca.keyPassphraseEnv to the name of a variable holding it" : "the passphrase did not open it"}`
        : `tls.ca.key (${settings.key}) is not a private key: ${(error as Error).message}`,
    );
  }
  if (!cert.checkPrivateKey(key))
    throw new PkiError(`tls.ca.key (${settings.key}) does not match tls.ca.cert (${settings.cert})`);
  if (!cert.ca)
    throw new PkiError(`tls.ca.cert (${settings.cert}) is not a CA certificate (basicConstraints CA:TRUE is missing)`);
  if (key.asymmetricKeyType !== "rsa")
    throw new PkiError(`tls.ca.key (${settings.key}) must be an RSA key (got ${key.asymmetricKeyType})`);
  return { certPem, keyPem: key.export({ type: "pkcs8", format: "pem" }).toString() };
}

async function loadProvidedServer(
  settings: NonNullable<Config["tls"]["server"]>,
  names: readonly string[],
  now: Date,
): Promise<TlsMaterial> {
  const certPem = await readMaterial(settings.cert, "tls.server.cert");
  const keyPem = await readMaterial(settings.key, "tls.server.key");
  const chainPem = settings.chain ? await readMaterial(settings.chain, "tls.server.chain") : "";
  const cert = parseCertificate(certPem, "tls.server.cert", settings.cert);
  checkValidity(cert, "tls.server.cert", settings.cert, now);
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw new PkiError(`tls.server.key (${settings.key}) is not a private key: ${(error as Error).message}`);
  }
  if (!cert.checkPrivateKey(key))
    throw new PkiError(`tls.server.key (${settings.key}) does not match tls.server.cert (${settings.cert})`);
  const chain = splitPem(chainPem);
  const root = chain.at(-1);
  const covered = names.filter((name) => certificateCovers(certPem, name));
  const warnings = names
    .filter((name) => !certificateCovers(certPem, name))
    .map(
      (name) =>
        `tls.server.cert (${settings.cert}) does not cover ${name}: clients using that name will fail TLS verification`,
    );
  return {
    ...(root ? { caCertPem: root, caFingerprint: sha256Fingerprint(root) } : {}),
    certChainPem: [certPem.trim(), ...chain].join("\n") + "\n",
    keyPem,
    names: covered,
    notAfter: new Date(cert.validTo),
    actions: [`using the server certificate ${settings.cert} as it is`],
    warnings,
  };
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
