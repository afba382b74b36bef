import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { auditFiles, headName, lineHash } from "./chain-file.js";
import { genesisHash, type AuditRecord } from "./event.js";

export interface ReadRecord {
  file: string;
  line: number;
  text: string;
  /** Undefined when the line is not JSON. */
  record?: AuditRecord;
}

/** Every record of every audit file, in chain order. Files are read whole: rotation keeps each one bounded. */
export function* readRecords(dir: string): Generator<ReadRecord> {
  for (const file of auditFiles(dir)) {
    const lines = readFileSync(file, "utf8").split("\n");
    if (lines.at(-1) === "") lines.pop();
    for (const [index, text] of lines.entries()) {
      let record: AuditRecord | undefined;
      try {
        record = JSON.parse(text) as AuditRecord;
      } catch {
        record = undefined;
      }
      yield { file, line: index + 1, text, record };
    }
  }
}

export type Verification =
  { ok: true; records: number } | { ok: false; records: number; file: string; line: number; problem: string };

/**
 * Walks the hash chain. Each record must name the SHA-256 of the line before it and carry the next `seq`;
 * the last one must match the head file. The first failure is reported with its file and line.
 */
export function verifyChain(dir: string): Verification {
  let expectedPrev = genesisHash;
  let expectedSeq = 1;
  let previous: ReadRecord | undefined;
  let beforeLast: ReadRecord | undefined;
  let count = 0;
  for (const entry of readRecords(dir)) {
    const where = { file: basename(entry.file), line: entry.line };
    const record = entry.record;
    if (!record)
      return { ok: false, records: count, ...where, problem: `line ${entry.line} is not a JSON record: it was edited` };
    if (record.seq !== expectedSeq) {
      const problem = `line ${entry.line} holds record ${record.seq} where record ${expectedSeq} belongs: records were removed, reordered or copied`;
      return { ok: false, records: count, ...where, problem };
    }
    if (record.prev !== expectedPrev) {
      const before = previous ? `line ${previous.line} of ${basename(previous.file)}` : "the start of the log";
      return {
        ok: false,
        records: count,
        ...(previous ? { file: basename(previous.file), line: previous.line } : where),
        problem: `${before} was changed: line ${entry.line} of ${basename(entry.file)} no longer links to it`,
      };
    }
    expectedPrev = lineHash(entry.text);
    expectedSeq += 1;
    beforeLast = previous;
    previous = entry;
    count += 1;
  }
  const head = readHead(dir);
  const lastSeq = previous?.record?.seq ?? 0;
  // A writer killed between its line and the head leaves the head one record behind, naming the line before.
  const crashedBeforeHead =
    head !== undefined &&
    previous !== undefined &&
    head.seq === lastSeq - 1 &&
    head.hash === (beforeLast === undefined ? genesisHash : lineHash(beforeLast.text));
  if (head && previous && !crashedBeforeHead && (head.seq !== lastSeq || head.hash !== expectedPrev)) {
    const problem =
      head.seq > lastSeq
        ? `the log ends at record ${lastSeq} but ${head.seq} were written: the last records were removed`
        : head.seq !== lastSeq
          ? `the log holds ${lastSeq} records but its head names ${head.seq}: the head was changed`
          : `line ${previous.line} of ${basename(previous.file)} (the last record) was changed`;
    return { ok: false, records: count, file: basename(previous.file), line: previous.line, problem };
  }
  if (head && !previous && head.seq > 0) {
    return {
      ok: false,
      records: 0,
      file: headName,
      line: 1,
      problem: `${head.seq} records were written but none is left`,
    };
  }
  return { ok: true, records: count };
}

function readHead(dir: string): { seq: number; hash: string } | undefined {
  try {
    const [seq, hash] = readFileSync(join(dir, headName), "utf8").trim().split(" ");
    return seq && hash ? { seq: Number(seq), hash } : undefined;
  } catch {
    return undefined;
  }
}
