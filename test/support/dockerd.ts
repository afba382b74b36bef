import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { runCommand, type CommandOptions, type CommandResult } from "./command.js";
import { spawnDaemon, waitUntil } from "./daemon-process.js";
import { removeTempDir } from "./temp-dir.js";
import { requireTool } from "./tools.js";

export interface Dockerd {
  /** Path of the API socket. */
  socket: string;
  /** Runs `/usr/bin/docker -H unix://SOCKET ...ARGS`; rejects with stderr when docker fails. */
  docker(args: readonly string[], options?: CommandOptions): Promise<CommandResult>;
  /** `docker login REGISTRY` with the password on stdin. */
  login(registry: string, user: string, password: string): Promise<CommandResult>;
  /** The CLI's own DOCKER_CONFIG, where `docker login` writes `config.json`. */
  configDir: string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

export interface DockerdOptions {
  /** More dockerd flags, e.g. `--insecure-registry`. */
  extraArgs?: string[];
  /**
   * Run dockerd (and the containerd it starts) in this network namespace, a name under /var/run/netns,
   * entered with `nsenter --net=`. Not `ip netns exec`: it remounts /sys, and dockerd then fails with
   * "Devices cgroup isn't mounted". The API socket stays a file under /tmp, reachable from the host.
   */
  netns?: string;
  /** More keys for its daemon.json, e.g. `{ "registry-mirrors": ["https://HOST:PORT"] }`. */
  daemonConfig?: Record<string, unknown>;
}

// Debian's docker CLI; /usr/local/bin/docker, if there, may be another version the daemon does not match.
const DOCKER_CLI = "/usr/bin/docker";

// Unix socket paths are limited to 108 bytes, and dockerd puts its containerd's socket at
// EXEC_ROOT/containerd/containerd.sock, so everything lives in a short directory under /tmp,
// whatever TMPDIR says.
const SHORT_TMP = "/tmp";

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: "/_ping", method: "GET", timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

async function mountPointsUnder(dir: string): Promise<string[]> {
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  return mountinfo
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => point !== undefined)
    .map((point) => point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** True while `pid` exists and is not a zombie (an orphan's zombie stays until init reaps it). */
async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return stat !== "" && state !== "Z" && state !== "X";
}

/**
 * Debian's dockerd (20.10), as root, with everything of its own in a temp dir: data root, exec root,
 * pid file, API socket, daemon.json and trust key (which otherwise lands in /etc/docker/key.json).
 * vfs storage and no bridge or iptables, so it needs no kernel features beyond what a sandbox has; it
 * can import, load, push and pull images but is not meant to run containers.
 * dockerd 20.10 starts and supervises its own containerd (config, socket and state under the exec
 * root) when not given `--containerd`, so none is started here.
 */
export async function startDockerd(options: DockerdOptions = {}): Promise<Dockerd> {
  const dockerd = requireTool("dockerd", "docker.io");
  const dockerCli = requireTool(DOCKER_CLI, "docker.io");
  requireTool("containerd", "containerd");
  const nsenter = options.netns === undefined ? undefined : requireTool("nsenter", "util-linux");
  const dir = await mkdtemp(join(SHORT_TMP, "pcd-"));
  const socket = join(dir, "docker.sock");
  const configDir = join(dir, "cli");
  await mkdir(configDir);
  const execRoot = join(dir, "exec");
  const containerdPidFile = join(execRoot, "containerd", "containerd.pid");
  await writeFile(
    join(dir, "daemon.json"),
    JSON.stringify({ ...options.daemonConfig, "deprecated-key-path": join(dir, "key.json") }),
  );
  const dockerdArgs = [
    "--storage-driver=vfs",
    "--iptables=false",
    "--ip6tables=false",
    "--bridge=none",
    `--data-root=${join(dir, "data")}`,
    `--exec-root=${execRoot}`,
    `--pidfile=${join(dir, "docker.pid")}`,
    `--config-file=${join(dir, "daemon.json")}`,
    `--host=unix://${socket}`,
    ...(options.extraArgs ?? []),
  ];
  // nsenter execs dockerd in its own process, so the daemon's pid is dockerd's and stop() signals it.
  const daemon =
    nsenter === undefined
      ? spawnDaemon(dockerd, dockerdArgs, { logPath: join(dir, "dockerd.log") })
      : spawnDaemon(nsenter, [`--net=/var/run/netns/${options.netns}`, dockerd, ...dockerdArgs], {
          logPath: join(dir, "dockerd.log"),
        });

  async function stop(): Promise<void> {
    await daemon.stop(30_000);
    // dockerd stops its containerd on a clean shutdown; after a SIGKILL the containerd is orphaned.
    const containerdPid = Number((await readFile(containerdPidFile, "utf8").catch(() => "")).trim());
    if (containerdPid > 0 && (await isAlive(containerdPid))) {
      const cmdline = await readFile(`/proc/${containerdPid}/cmdline`, "utf8").catch(() => "");
      if (cmdline.includes(execRoot)) {
        process.kill(containerdPid, "SIGKILL");
        await waitUntil(async () => !(await isAlive(containerdPid)), { what: `containerd ${containerdPid} to exit` });
      }
    }
    // dockerd bind-mounts its data root (and vfs or netns files) and unmounts them on a clean exit only.
    for (const point of await mountPointsUnder(dir)) {
      await runCommand("umount", ["--lazy", point]).catch(() => undefined);
    }
    await removeTempDir(dir);
  }

  try {
    await waitUntil(() => ping(socket), { what: `dockerd on ${socket}`, daemon, timeoutMs: 60_000 });
  } catch (error) {
    await stop();
    throw error;
  }

  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: configDir };
  delete env.DOCKER_HOST;
  delete env.DOCKER_CONTEXT;
  const docker: Dockerd["docker"] = (args, commandOptions = {}) =>
    runCommand(dockerCli, ["-H", `unix://${socket}`, ...args], { env, ...commandOptions });
  return {
    socket,
    docker,
    login: (registry, user, password) =>
      docker(["login", "--username", user, "--password-stdin", registry], { input: `${password}\n` }),
    configDir,
    log: () => daemon.log(),
    stop,
  };
}
