import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeSecret } from "../fs/atomic-file.js";

/**
 * The keys that encrypt TLS session tickets (RFC 5077), in a 0600 file every server process reads, so a
 * client resumes its session on whichever worker (or machine sharing the certs directory) takes its next
 * connection instead of paying for a full handshake. `serve` makes new ones at every start.
 */
const ticketKeyFile = (certsDir: string) => join(certsDir, "tls-session-tickets.key");
const ticketKeyBytes = 48;

export async function renewSessionTicketKeys(certsDir: string): Promise<void> {
  await writeSecret(ticketKeyFile(certsDir), randomBytes(ticketKeyBytes));
}

export async function loadSessionTicketKeys(certsDir: string): Promise<Buffer> {
  try {
    const keys = await readFile(ticketKeyFile(certsDir));
    if (keys.length === ticketKeyBytes) return keys;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await renewSessionTicketKeys(certsDir);
  return readFile(ticketKeyFile(certsDir));
}
