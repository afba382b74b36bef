// What /proc says about running processes: their memory and their children.

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

/** The direct children of `pid`, from every one of its threads (a child is listed under the thread that forked it). */
function childPids(pid) {
  let tasks;
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children = new Set();
  for (const task of tasks) {
    try {
      for (const child of fs.readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").split(/\s+/)) {
        if (child) children.add(Number(child));
      }
    } catch {
      // the thread ended while we looked
    }
  }
  return [...children];
}

/** `pid` and everything below it. */
export function processTree(pid) {
  const found = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift();
    found.push(next);
    queue.push(...childPids(next));
  }
  return found;
}

/** Sets the peak RSS (VmHWM) of `pid` back to its current RSS (Linux ≥ 4.0); false when that is not allowed. */
export function resetPeakRss(pid) {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** The command name of `pid` (/proc/PID/comm), e.g. node, nginx, docker-registry. */
export function processName(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "gone";
  }
}
