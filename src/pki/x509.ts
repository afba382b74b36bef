import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
} from "node:crypto";
import { isIP } from "node:net";
import { createRequire } from "node:module";
import type Forge from "node-forge";

/** node-forge is needed only to issue a certificate: server processes that never do never load it. */
const loadForge = () => createRequire(import.meta.url)("node-forge") as typeof Forge;

/** Part of node-forge's API that its type definitions leave out. */
interface ForgeTbs {
  getTBSCertificate(cert: Forge.pki.Certificate): Forge.asn1.Asn1;
}

export interface Subject {
  commonName: string;
  organization?: string;
}

export interface IssueOptions {
  subject: Subject;
  /** SubjectPublicKeyInfo of the certified key, as PEM. */
  publicKeyPem: string;
  /** The issuer's certificate and RSA key; absent for a self-signed CA. */
  issuer?: { certPem: string; keyPem: string };
  /** For a self-signed certificate: its own key. */
  selfKeyPem?: string;
  days: number;
  kind: "ca" | "server" | "signing";
  /** DNS names and IP addresses (server certificates). */
  names?: readonly string[];
  /** The moment the certificate starts from (an hour is taken off for clock skew); now by default. */
  now?: Date;
}

export function generateRsaKey(bits: number): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: bits });
  return {
    privateKeyPem: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** An ECDSA P-256 key: a TLS handshake signs with it in a fraction of what an RSA key costs. */
export function generateEcKey(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/**
 * Builds an X.509 certificate. node-forge lays out the TBSCertificate, but it encodes RSA public keys only,
 * so for any other certified key (an EC token-signing key) its SubjectPublicKeyInfo is put in as Node
 * exports it, and Node's crypto signs the result with the issuer's RSA key.
 */
export function issueCertificate(options: IssueOptions): string {
  const signerKeyPem = options.issuer?.keyPem ?? options.selfKeyPem;
  if (!signerKeyPem) throw new Error("a certificate needs an issuer or its own key");
  const signerKey = createPrivateKey(signerKeyPem);
  if (signerKey.asymmetricKeyType !== "rsa")
    throw new Error(`issuer keys must be RSA (got ${signerKey.asymmetricKeyType})`);
  const certified = createPublicKey(options.publicKeyPem);
  const isRsa = certified.asymmetricKeyType === "rsa";

  const forge = loadForge();
  const cert = forge.pki.createCertificate();
  cert.serialNumber = positiveSerial();
  const now = options.now?.getTime() ?? Date.now();
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + options.days * 24 * 60 * 60 * 1000);
  cert.setSubject(attributes(options.subject));
  cert.setIssuer(
    options.issuer
      ? forge.pki.certificateFromPem(options.issuer.certPem).subject.attributes
      : attributes(options.subject),
  );
  cert.publicKey = forge.pki.publicKeyFromPem(
    (isRsa ? certified : createPublicKey(signerKey)).export({ type: "spki", format: "pem" }).toString(),
  );
  cert.setExtensions(extensions(options, isRsa));
  cert.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption as string;

  const tbs = (forge.pki as unknown as ForgeTbs).getTBSCertificate(cert);
  if (!isRsa) {
    const spkiDer = certified.export({ type: "spki", format: "der" });
    (tbs.value as Forge.asn1.Asn1[])[6] = forge.asn1.fromDer(spkiDer.toString("binary"));
  }
  const tbsDer = Buffer.from(forge.asn1.toDer(tbs).getBytes(), "binary");
  const signature = sign("sha256", tbsDer, signerKey);
  const { asn1 } = forge;
  const certificate = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(
        asn1.Class.UNIVERSAL,
        asn1.Type.OID,
        false,
        asn1.oidToDer(forge.pki.oids.sha256WithRSAEncryption as string).getBytes(),
      ),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ""),
    ]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, "\0" + signature.toString("binary")),
  ]);
  const der = Buffer.from(asn1.toDer(certificate).getBytes(), "binary");
  return `-----BEGIN CERTIFICATE-----\n${der
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .replace(/\n?$/, "\n")}-----END CERTIFICATE-----\n`;
}

function extensions(options: IssueOptions, isRsa: boolean): object[] {
  // forge derives the key identifier from the key it encoded, which is only the real one for RSA keys.
  const list: object[] = isRsa ? [{ name: "subjectKeyIdentifier" }] : [];
  if (options.issuer) {
    const issuerCert = loadForge().pki.certificateFromPem(options.issuer.certPem);
    list.push({ name: "authorityKeyIdentifier", keyIdentifier: issuerCert.generateSubjectKeyIdentifier().getBytes() });
  }
  switch (options.kind) {
    case "ca":
      list.push(
        { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
        { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
      );
      break;
    case "server":
      list.push(
        { name: "basicConstraints", cA: false, critical: true },
        // Key encipherment is what RSA key exchange does with a server key; an EC key only signs.
        { name: "keyUsage", digitalSignature: true, keyEncipherment: isRsa, critical: true },
        { name: "extKeyUsage", serverAuth: true },
        { name: "subjectAltName", altNames: (options.names ?? []).map(altName) },
      );
      break;
    case "signing":
      // Registry 2.x verifies the x5c chain with Go's x509 defaults: no extended key usage at all passes.
      list.push(
        { name: "basicConstraints", cA: false, critical: true },
        { name: "keyUsage", digitalSignature: true, critical: true },
      );
      break;
  }
  return list;
}

function altName(name: string): object {
  return isIP(name) ? { type: 7, ip: name } : { type: 2, value: name };
}

function attributes(subject: Subject): Forge.pki.CertificateField[] {
  return [
    { shortName: "CN", value: subject.commonName },
    ...(subject.organization ? [{ shortName: "O", value: subject.organization }] : []),
  ];
}

function positiveSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f;
  return bytes.toString("hex");
}

export function sha256Fingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/** Whether a certificate's subjectAltName covers a DNS name or an IP address. */
export function certificateCovers(certPem: string, name: string): boolean {
  const cert = new X509Certificate(certPem);
  return isIP(name) ? cert.checkIP(name) !== undefined : cert.checkHost(name, { wildcards: true }) !== undefined;
}

/** The DNS names and IP addresses a certificate's subjectAltName lists (IPv6 in its short form, `::1`). */
export function certificateNames(certPem: string): string[] {
  const san = new X509Certificate(certPem).subjectAltName ?? "";
  return san.split(", ").flatMap((entry) => {
    const [, kind, value] = /^(DNS|IP Address):(.+)$/.exec(entry) ?? [];
    if (!value) return [];
    return [
      kind === "IP Address" && value.includes(":")
        ? new URL(`http://[${value}]`).hostname.slice(1, -1)
        : value.toLowerCase(),
    ];
  });
}
