import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from "node:crypto";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { JWK } from "jose";
import { writePublic, writeSecret } from "../../fs/atomic-file.js";
import { readIfExists } from "../../fs/read-if-exists.js";
import { issueCertificate } from "../../pki/x509.js";
import { jwkThumbprint, libtrustKeyId, publicJwk } from "./key-id.js";

export type SigningAlgorithm = "ES256" | "RS256";

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwk: JWK;
  /** The token-signing certificate, issued by our CA, for the `x5c` header (base64 DER). */
  certificateBase64: string;
  certificatePem: string;
  /** When it stopped signing; it still verifies until its last token has expired. */
  retiredAt?: Date;
}

export interface SigningKeyring {
  current: SigningKey;
  /** The current key and the retired ones that still verify. */
  verifying: SigningKey[];
}

export interface SigningKeyOptions {
  /** Directory that holds `current.key`/`current.crt` and retired pairs. */
  dir: string;
  algorithm: SigningAlgorithm;
  ca: { certPem: string; keyPem: string };
  /** Lifetime of access tokens: how long a retired key must keep verifying. */
  tokenTtlSeconds: number;
  /** Use libtrust's key ID as `kid` (registry 2.x without `x5c`) instead of the RFC 7638 thumbprint. */
  libtrustKid?: boolean;
  /** At start, a key and certificate that do not match are replaced; on a reload they are an error (retry later). */
  repairMismatch?: boolean;
  now?: () => Date;
}

const signingCertDays = 3650;

/** Loads the token-signing keys, creating the first one (0600) when there is none. */
export async function loadSigningKeys(options: SigningKeyOptions): Promise<SigningKeyring> {
  const now = options.now?.() ?? new Date();
  const currentKey = await readIfExists(join(options.dir, "current.key"));
  const currentCert = await readIfExists(join(options.dir, "current.crt"));
  let current: SigningKey;
  if (currentKey && currentCert && keyFits(currentKey, options.algorithm)) {
    // `token rotate` writes the key and then its certificate: a reader in between sees a pair that does not
    // match, and must not sign with one and send the other in x5c.
    if (!new X509Certificate(currentCert).checkPrivateKey(createPrivateKey(currentKey))) {
      if (!options.repairMismatch)
        throw new Error(`${options.dir}: current.key and current.crt do not match (a rotation in progress?)`);
      current = await createKey(options);
    } else {
      current = await describe(currentKey, currentCert, options);
    }
  } else {
    current = await createKey(options);
  }
  const verifying = [current];
  for (const name of await readdir(options.dir).catch(() => [] as string[])) {
    const match = /^retired-(\d+)\.key$/.exec(name);
    if (!match) continue;
    const retiredAt = new Date(Number(match[1]));
    const base = join(options.dir, `retired-${match[1]}`);
    if (retiredAt.getTime() + options.tokenTtlSeconds * 1000 < now.getTime()) {
      await rm(`${base}.key`, { force: true });
      await rm(`${base}.crt`, { force: true });
      continue;
    }
    const keyPem = await readIfExists(`${base}.key`);
    const certPem = await readIfExists(`${base}.crt`);
    if (keyPem && certPem) verifying.push({ ...(await describe(keyPem, certPem, options)), retiredAt });
  }
  return { current, verifying };
}

/** Retires the current key (it keeps verifying for one token lifetime) and makes a new one. */
export async function rotateSigningKey(options: SigningKeyOptions): Promise<SigningKeyring> {
  const now = options.now?.() ?? new Date();
  const keyPem = await readIfExists(join(options.dir, "current.key"));
  const certPem = await readIfExists(join(options.dir, "current.crt"));
  if (keyPem && certPem) {
    await writeSecret(join(options.dir, `retired-${now.getTime()}.key`), keyPem);
    await writePublic(join(options.dir, `retired-${now.getTime()}.crt`), certPem);
  }
  await createKey(options);
  return loadSigningKeys(options);
}

async function createKey(options: SigningKeyOptions): Promise<SigningKey> {
  const pair =
    options.algorithm === "ES256"
      ? generateKeyPairSync("ec", { namedCurve: "P-256" })
      : generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyPem = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const certPem = issueCertificate({
    subject: { commonName: "Portcullis token signing", organization: "Portcullis" },
    publicKeyPem: pair.publicKey.export({ type: "spki", format: "pem" }).toString(),
    issuer: options.ca,
    days: signingCertDays,
    kind: "signing",
  });
  await writeSecret(join(options.dir, "current.key"), keyPem);
  await writePublic(join(options.dir, "current.crt"), certPem);
  return describe(keyPem, certPem, options);
}

async function describe(keyPem: string, certPem: string, options: SigningKeyOptions): Promise<SigningKey> {
  const privateKey = createPrivateKey(keyPem);
  const publicKey = createPublicKey(privateKey);
  const alg: SigningAlgorithm = privateKey.asymmetricKeyType === "ec" ? "ES256" : "RS256";
  const kid = options.libtrustKid ? libtrustKeyId(publicKey) : await jwkThumbprint(publicKey);
  return {
    kid,
    alg,
    privateKey,
    publicKey,
    jwk: await publicJwk(publicKey, kid, alg),
    certificateBase64: new X509Certificate(certPem).raw.toString("base64"),
    certificatePem: certPem,
  };
}

function keyFits(keyPem: string, algorithm: SigningAlgorithm): boolean {
  const type = createPrivateKey(keyPem).asymmetricKeyType;
  return algorithm === "ES256" ? type === "ec" : type === "rsa";
}
