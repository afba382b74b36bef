import { createHash, type Hash } from "node:crypto";
import { RegistryError } from "./errors.js";

export type DigestAlgorithm = "sha256" | "sha512";

/** A parsed, validated content digest: `algorithm:hex`. Once made, it cannot be malformed. */
export interface Digest {
  readonly algorithm: DigestAlgorithm;
  readonly hex: string;
  readonly text: string;
}

const hexLength: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const digestGrammar = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

export function parseDigest(text: string): Digest {
  const match = digestGrammar.exec(text);
  if (!match) throw new RegistryError("DIGEST_INVALID", "invalid digest", { digest: text });
  const algorithm = match[1] as string;
  const hex = match[2] as string;
  if (algorithm !== "sha256" && algorithm !== "sha512") {
    throw new RegistryError("DIGEST_INVALID", `unsupported digest algorithm ${algorithm}`, { digest: text });
  }
  if (hex.length !== hexLength[algorithm] || !/^[a-f0-9]+$/.test(hex)) {
    throw new RegistryError("DIGEST_INVALID", "invalid digest", { digest: text });
  }
  return { algorithm, hex, text };
}

export function looksLikeDigest(reference: string): boolean {
  return reference.includes(":");
}

export function digestOf(content: Buffer, algorithm: DigestAlgorithm = "sha256"): Digest {
  const hex = createHash(algorithm).update(content).digest("hex");
  return { algorithm, hex, text: `${algorithm}:${hex}` };
}

export function newHash(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

export function digestFromHash(hash: Hash, algorithm: DigestAlgorithm): Digest {
  const hex = hash.digest("hex");
  return { algorithm, hex, text: `${algorithm}:${hex}` };
}
