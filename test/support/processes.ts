import { readFileSync } from "node:fs";

/** The pids of the processes `pid` started that are still running (its workers, for `portcullis serve`). */
export function childPids(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(/\s+/).filter(Boolean).map(Number);
}
