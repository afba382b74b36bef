import type { Logger } from "../log.js";
import type { StorageDriver } from "./storage/driver.js";

export interface GcReport {
  dryRun: boolean;
  manifests: { repository: string; digest: string; size: number }[];
  blobs: { digest: string; size: number }[];
  uploads: { repository: string; id: string; size: number }[];
  /** Bytes the sweep frees (or would free). */
  bytes: number;
}

export function createGarbageCollector(deps: {
  storage: StorageDriver;
  graceMs: number;
  now?: () => number;
  logger?: Logger;
}): { run(options: { dryRun: boolean }): Promise<GcReport> } {
  void deps;
  return {
    async run({ dryRun }) {
      return { dryRun, manifests: [], blobs: [], uploads: [], bytes: 0 };
    },
  };
}
