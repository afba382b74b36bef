import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { MiB } from "./units.mjs";

/** The machine and Node version a benchmark ran on, for its report. */
export function environment() {
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    memoryMiB: Math.round(os.totalmem() / MiB),
  };
}

/** Writes `report` as JSON to `file` and says where. */
export async function writeResults(file, report) {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), file) || file}`);
}
