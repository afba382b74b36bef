import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand, type CommandOptions, type CommandResult } from "./command.js";
import { daemonInDir, spawnDaemon, waitUntil, type RunningDaemon } from "./daemon-process.js";
import { makeTempDir } from "./temp-dir.js";
import { requireTool } from "./tools.js";

export interface Containerd extends RunningDaemon {
  /** Path of the gRPC socket, what `ctr -a` takes. */
  socket: string;
  /** Runs `ctr -a SOCKET ...ARGS` (snapshotter `native`); rejects with stderr when ctr fails. */
  ctr(args: readonly string[], options?: CommandOptions): Promise<CommandResult>;
}

// Unix socket paths are limited to 108 bytes (ttrpc adds ".ttrpc"), so the directory is short and under
// /tmp whatever TMPDIR says.
const SHORT_TMP = "/tmp";

// Plugins that would reach outside the temp dir (CRI: CNI, /var/lib/kubelet…) or need kernel features a
// sandbox may lack; image pull, push and import need none of them.
const DISABLED_PLUGINS = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
];

function config(dir: string, socket: string): string {
  const quote = (value: string) => JSON.stringify(value);
  return [
    "version = 2",
    `root = ${quote(join(dir, "root"))}`,
    `state = ${quote(join(dir, "state"))}`,
    `temp = ${quote(join(dir, "tmp"))}`,
    `disabled_plugins = [${DISABLED_PLUGINS.map(quote).join(", ")}]`,
    "",
    "[grpc]",
    `  address = ${quote(socket)}`,
    "",
    "[ttrpc]",
    `  address = ${quote(`${socket}.ttrpc`)}`,
    "",
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${quote(join(dir, "opt"))}`,
    "",
  ].join("\n");
}

/**
 * Debian's containerd (1.6) as root with a config of its own: root, state, temp and opt directories and
 * the gRPC socket all in a temp dir, the CRI plugin off; never the system instance or /run/containerd.
 * Made for `ctr images import|pull|push|tag`; it runs no container. ctr unpacks pulls with the `native`
 * snapshotter (plain copies), so nothing is mounted.
 */
export async function startContainerd(): Promise<Containerd> {
  const containerd = requireTool("containerd", "containerd");
  const ctr = requireTool("ctr", "containerd");
  const work = await makeTempDir("pcc-", SHORT_TMP);
  const dir = work.path;
  const socket = join(dir, "c.sock");
  await mkdir(join(dir, "tmp"));
  const configPath = join(dir, "config.toml");
  await writeFile(configPath, config(dir, socket));
  const daemon = spawnDaemon(containerd, ["--config", configPath], { logPath: join(dir, "containerd.log") });
  const env: NodeJS.ProcessEnv = { ...process.env, CONTAINERD_SNAPSHOTTER: "native" };
  delete env.CONTAINERD_ADDRESS;
  delete env.CONTAINERD_NAMESPACE;
  const run = (args: readonly string[], options: CommandOptions = {}) =>
    runCommand(ctr, ["-a", socket, ...args], { env, ...options });

  const { log, stop } = daemonInDir(daemon, work);
  try {
    await waitUntil(
      async () => {
        await run(["version"], { timeoutMs: 5_000 });
        return true;
      },
      { what: `containerd on ${socket}`, daemon },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { socket, ctr: run, log, stop };
}
