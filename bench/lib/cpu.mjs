// CPU seconds a phase cost, on each side of the connection: the server's processes (user + system time of
// every process under its roots, from /proc/PID/stat) and the clients the benchmark ran and waited for (the
// times of this process's reaped children, from /proc/self/stat). On 2 cores the two compete, so a side whose
// server needs less CPU leaves more to skopeo: these rows say which of the two limits a case.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { processTree } from "./proc-stats.mjs";

const TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** The fields of /proc/PID/stat after the command name (which may hold spaces), or null once it is gone. */
function statFields(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

// Field numbers of proc(5) minus 3: the fields start at the state, field 3.
const UTIME = 14 - 3;
const STIME = 15 - 3;
const CUTIME = 16 - 3;
const CSTIME = 17 - 3;

const seconds = (fields, a, b) => (Number(fields[a]) + Number(fields[b])) / TICKS_PER_SECOND;

/** CPU seconds per live process under `rootPids`: Map pid → seconds. */
function serverTimes(rootPids) {
  const times = new Map();
  for (const pid of rootPids.flatMap((root) => processTree(root))) {
    const fields = statFields(pid);
    if (fields) times.set(pid, seconds(fields, UTIME, STIME));
  }
  return times;
}

const reapedChildrenSeconds = () => seconds(statFields("self"), CUTIME, CSTIME);

/**
 * `phase()` starts counting; its `end()` resolves to `{ server, clients }` in CPU seconds. A server process
 * that started during the phase counts from zero; one that ended during it is lost (a worker that died).
 */
export function cpuMeter(rootPids) {
  return {
    phase() {
      const server = serverTimes(rootPids());
      const clients = reapedChildrenSeconds();
      return {
        end() {
          let spent = 0;
          for (const [pid, now] of serverTimes(rootPids())) spent += now - (server.get(pid) ?? 0);
          return { server: spent, clients: reapedChildrenSeconds() - clients };
        },
      };
    },
  };
}
