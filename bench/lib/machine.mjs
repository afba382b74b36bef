import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runCommand } from "./run-command.mjs";
import { MiB } from "./units.mjs";

// The filesystem holding `dir`: the mount with the longest mount point above it.
function filesystemOf(dir) {
  try {
    const real = fs.realpathSync(dir);
    const mounts = fs
      .readFileSync("/proc/self/mounts", "utf8")
      .split("\n")
      .map((line) => line.split(" "))
      .filter(([, point]) => point && (real === point || real.startsWith(point === "/" ? "/" : `${point}/`)));
    const [device, point, type] = mounts.sort((a, b) => b[1].length - a[1].length)[0];
    return `${type} (${device} on ${point})`;
  } catch {
    return "unknown";
  }
}

/** The machine a run was on, for the report's header. */
export function machine() {
  return {
    cpuModel: os.cpus()[0]?.model?.trim() ?? "unknown",
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / MiB / 1024),
    kernel: `${os.type()} ${os.release()}`,
    tmpFilesystem: `${os.tmpdir()}: ${filesystemOf(os.tmpdir())}`,
  };
}

async function firstLine(cmd, args, pick = (out) => out) {
  try {
    const { stdout, stderr } = await runCommand(cmd, args, { timeoutMs: 10_000 });
    return pick(`${stdout}${stderr}`.trim().split("\n")[0]);
  } catch {
    return "not found";
  }
}

async function git(dir, args) {
  const { stdout } = await runCommand("git", ["-C", dir, ...args], { timeoutMs: 10_000 });
  return stdout.trim();
}

/**
 * Which Portcullis ran, from the project `root` its CLI is in: the git commit, and whether src/ had
 * uncommitted changes; or, for a copy outside git, the first line of a COMMIT file beside its package.json.
 */
async function portcullisBuild(root) {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
  try {
    const commit = await git(root, ["rev-parse", "--short", "HEAD"]);
    const dirty = (await git(root, ["status", "--porcelain", "--", "src"])) !== "";
    return `${pkg.version} (commit ${commit}${dirty ? ", with uncommitted changes in src/" : ""})`;
  } catch {
    const note = fs.existsSync(path.join(root, "COMMIT"))
      ? fs.readFileSync(path.join(root, "COMMIT"), "utf8").split("\n")[0].trim()
      : "commit unknown";
    return `${pkg.version} (${note})`;
  }
}

/** The versions of everything the run started, as each program reports itself; `cli` is Portcullis's dist/cli/main.js. */
export async function versions(cli) {
  return {
    portcullis: await portcullisBuild(path.resolve(path.dirname(cli), "..", "..")),
    node: `${process.version} (OpenSSL ${process.versions.openssl})`,
    "docker-registry": await firstLine("docker-registry", ["--version"], (l) => l.replace(/^docker-registry\s+/, "")),
    nginx: await firstLine("nginx", ["-v"], (l) => l.replace(/^nginx version:\s*nginx\//, "")),
    skopeo: await firstLine("skopeo", ["--version"], (l) => l.replace(/^skopeo version\s*/, "")),
    openssl: await firstLine("openssl", ["version"], (l) => l.replace(/^OpenSSL\s+/, "").replace(/ \(Library.*$/, "")),
    curl: await firstLine("curl", ["--version"], (l) => l.split(" ")[1]),
    ab: await firstLine("ab", ["-V"], (l) => l.replace(/^This is ApacheBench, Version /, "").replace(/ <.*$/, "")),
  };
}
