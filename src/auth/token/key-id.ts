import { createHash, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint, exportJWK, type JWK } from "jose";

/** RFC 7638 thumbprint of the public key: the `kid` registry 3.x and any JWKS consumer understand. */
export async function jwkThumbprint(publicKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(publicKey), "sha256");
}

export async function publicJwk(publicKey: KeyObject, kid: string, alg: string): Promise<JWK> {
  return { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
}

/**
 * libtrust's key ID: base32 of the first 240 bits of SHA-256 over the DER SubjectPublicKeyInfo, in 12
 * groups of 4 joined by `:`. Registry 2.x matches `kid` against it when a token has no `x5c`; registry 3
 * dropped it (distribution #4299), so it is only an opt-in compatibility mode.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const digest = createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest()
    .subarray(0, 30);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  let encoded = "";
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      encoded += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return (encoded.match(/.{4}/g) ?? []).join(":");
}
