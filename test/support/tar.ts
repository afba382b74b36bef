/** A minimal ustar writer: regular files and directories, enough for image layers and `docker import`. */

export interface TarEntry {
  /** Relative path; directories end with "/". At most 100 bytes. */
  path: string;
  /** Omitted for directories. */
  content?: Buffer;
  mode?: number;
  /** Seconds since the epoch. */
  mtime?: number;
}

const BLOCK = 512;

function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  // length-1 octal digits then NUL, as GNU and BSD tar write them.
  header.write(value.toString(8).padStart(length - 1, "0") + "\0", offset, length, "ascii");
}

function headerFor(entry: TarEntry): Buffer {
  const isDirectory = entry.path.endsWith("/");
  const name = Buffer.from(entry.path, "utf8");
  if (name.length > 100) throw new Error(`tar entry name longer than 100 bytes: ${entry.path}`);
  const header = Buffer.alloc(BLOCK);
  name.copy(header, 0);
  writeOctal(header, 100, 8, entry.mode ?? (isDirectory ? 0o755 : 0o644));
  writeOctal(header, 108, 8, 0);
  writeOctal(header, 116, 8, 0);
  writeOctal(header, 124, 12, isDirectory ? 0 : (entry.content?.length ?? 0));
  writeOctal(header, 136, 12, entry.mtime ?? 1_700_000_000);
  header.write(isDirectory ? "5" : "0", 156, 1, "ascii");
  header.write("ustar\0", 257, 6, "ascii");
  header.write("00", 263, 2, "ascii");
  header.write("root", 265, 32, "ascii");
  header.write("root", 297, 32, "ascii");
  // The checksum is computed with its own field read as eight spaces.
  header.fill(" ", 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "ascii");
  return header;
}

export function createTar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    parts.push(headerFor(entry));
    const content = entry.path.endsWith("/") ? undefined : (entry.content ?? Buffer.alloc(0));
    if (content !== undefined && content.length > 0) {
      parts.push(content);
      const padding = (BLOCK - (content.length % BLOCK)) % BLOCK;
      if (padding > 0) parts.push(Buffer.alloc(padding));
    }
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}
