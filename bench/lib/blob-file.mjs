import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { MiB } from "./units.mjs";

/** Writes `sizeBytes` random bytes to `file`; resolves to their digest. */
export async function generateBlob(file, sizeBytes) {
  const chunkSize = 4 * MiB;
  const hash = createHash("sha256");
  const random = promisify(randomBytes);
  async function* chunks() {
    for (let left = sizeBytes; left > 0; left -= chunkSize) {
      const chunk = await random(Math.min(chunkSize, left));
      hash.update(chunk);
      yield chunk;
    }
  }
  await pipeline(chunks, fs.createWriteStream(file));
  return `sha256:${hash.digest("hex")}`;
}
