import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { makeTempDir } from "./cleanup.mjs";
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

/** A random blob of `sizeMiB` in a new temp dir, saying on stdout how long it took: `{ dir, file, sizeBytes, digest }`. */
export async function createBlobFile(sizeMiB, tempDirPrefix) {
  const sizeBytes = sizeMiB * MiB;
  const dir = await makeTempDir(tempDirPrefix);
  const file = path.join(dir, "blob.bin");
  process.stdout.write(`generating a ${sizeMiB} MiB blob in ${dir} … `);
  const started = performance.now();
  const digest = await generateBlob(file, sizeBytes);
  console.log(`${digest} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  return { dir, file, sizeBytes, digest };
}
