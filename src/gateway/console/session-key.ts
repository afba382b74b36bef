import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeSecret } from "../../fs/atomic-file.js";

/**
 * The HMAC key that signs console session cookies, in a 0600 file every server process reads, so a session
 * made on one worker is honoured by all. Unlike the TLS ticket keys it is kept across restarts: a restart
 * does not sign everyone out.
 */
const sessionKeyFile = (certsDir: string) => join(certsDir, "console-session.key");
const sessionKeyBytes = 32;

export async function ensureConsoleSessionKey(certsDir: string): Promise<Buffer> {
  try {
    const key = await readFile(sessionKeyFile(certsDir));
    if (key.length === sessionKeyBytes) return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await writeSecret(sessionKeyFile(certsDir), randomBytes(sessionKeyBytes));
  return readFile(sessionKeyFile(certsDir));
}
