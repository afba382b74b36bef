// What /proc says about a running process: its memory, the CPU time it used, its children.

import { execFileSync } from "node:child_process";
import fs from "node:fs";

/** `{ rss, hwm }` in bytes (VmRSS and VmHWM of /proc/PID/status), or null once the process is gone. */
export function readProcStatus(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kB = (key) => {
      const match = status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"));
      return match ? Number(match[1]) * 1024 : null;
    };
    return { rss: kB("VmRSS"), hwm: kB("VmHWM") };
  } catch {
    return null;
  }
}

const clockTicks = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

// User + system CPU seconds a process has used so far (fields 14 and 15 of /proc/PID/stat).
export function readCpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return null;
  }
}

export function childPids(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
