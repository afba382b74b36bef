import { createHash } from "node:crypto";
import bcrypt from "bcryptjs";
import { readFile } from "node:fs/promises";
import { writeSecret } from "../../fs/atomic-file.js";

export interface HtpasswdEntry {
  user: string;
  hash: string;
}

export class HtpasswdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HtpasswdError";
  }
}

/** The bcrypt cost of hashes we write; Apache's `htpasswd -B` writes 5, which is too cheap today. */
export const bcryptCost = 10;

/**
 * Parses an htpasswd file. Only bcrypt hashes (`$2a$`, `$2b$`, and Apache's `$2y$`) are accepted: the other
 * kinds (`{SHA}`, `$apr1$`, crypt) are too weak to keep, and are refused naming the line.
 */
export function parseHtpasswd(text: string, path: string): Map<string, HtpasswdEntry> {
  const entries = new Map<string, HtpasswdEntry>();
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const at = line.indexOf(":");
    if (at <= 0) throw new HtpasswdError(`${path} line ${index + 1}: expected "user:hash"`);
    const user = line.slice(0, at);
    const hash = line.slice(at + 1);
    if (!/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
      throw new HtpasswdError(
        `${path} line ${index + 1} (user "${user}"): only bcrypt hashes are accepted; set a new password with "portcullis user passwd ${user}" or "htpasswd -B"`,
      );
    }
    entries.set(user, { user, hash });
  });
  return entries;
}

export function formatHtpasswd(entries: Iterable<HtpasswdEntry>): string {
  return [...entries].map((e) => `${e.user}:${e.hash}\n`).join("");
}

export async function readHtpasswd(path: string): Promise<Map<string, HtpasswdEntry>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw error;
  }
  return parseHtpasswd(text, path);
}

/** Replaces the file atomically, mode 0600. */
export async function writeHtpasswd(path: string, entries: Iterable<HtpasswdEntry>): Promise<void> {
  await writeSecret(path, formatHtpasswd(entries));
}

export async function hashPassword(password: string): Promise<string> {
  return bcrypt.hash(password, bcryptCost);
}

/** bcryptjs knows `$2a$`/`$2b$`; Apache's `$2y$` is the same algorithm under another name. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  return bcrypt.compare(password, hash.startsWith("$2y$") ? `$2b$${hash.slice(4)}` : hash);
}

/** Changes whenever the stored hash changes, without revealing it. */
export function stampOf(hash: string): string {
  return createHash("sha256").update(hash).digest("hex").slice(0, 16);
}

export function checkUserName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(name)) {
    throw new HtpasswdError(`"${name}" is not a valid user name: use letters, digits and . _ @ - (at most 64)`);
  }
  return name;
}
