import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand, type CommandOptions, type CommandResult } from "./command.js";
import { makeTempDir } from "./temp-dir.js";
import { requireTool } from "./tools.js";

export interface Podman {
  /** Runs `podman GLOBAL-FLAGS ...ARGS` against this instance's storage; rejects with stderr when podman fails. */
  podman(args: readonly string[], options?: CommandOptions): Promise<CommandResult>;
  stop(): Promise<void>;
}

export interface PodmanOptions {
  /** The registries.conf podman reads (`CONTAINERS_REGISTRIES_CONF`); by default one with no search registries. */
  registriesConf?: string;
}

// The commands that check signatures, and so read a policy.json; podman has no global flag for it.
const SIGNATURE_CHECKING = new Set(["import", "load", "pull", "push"]);

/**
 * Debian's podman (4.3) as root, with everything of its own in a temp dir: image storage (vfs, so no
 * mounts), run root, libpod tmp dir, events log (file), network config, `TMPDIR` (where `import`
 * stages), auth file, an accept-anything signature policy and an empty containers.conf, so neither the
 * machine's /etc/containers nor /run is read or written. Made for image commands (`import`, `push`,
 * `pull`, `rmi`, `inspect`); it runs no container.
 */
export async function createPodman(options: PodmanOptions = {}): Promise<Podman> {
  const podman = requireTool("podman", "podman");
  const work = await makeTempDir("podman-");
  const dir = work.path;
  await mkdir(join(dir, "tmp"));
  await writeFile(join(dir, "containers.conf"), "");
  // podman push and pull stat REGISTRY_AUTH_FILE when it is set, and fail if it is missing.
  await writeFile(join(dir, "auth.json"), JSON.stringify({ auths: {} }));
  await writeFile(join(dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  const registriesConf = options.registriesConf ?? join(dir, "registries.conf");
  if (options.registriesConf === undefined) await writeFile(registriesConf, "unqualified-search-registries = []\n");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CONTAINERS_CONF: join(dir, "containers.conf"),
    CONTAINERS_REGISTRIES_CONF: registriesConf,
    REGISTRY_AUTH_FILE: join(dir, "auth.json"),
    TMPDIR: join(dir, "tmp"),
  };
  const globalFlags = [
    `--root=${join(dir, "storage")}`,
    `--runroot=${join(dir, "run")}`,
    "--storage-driver=vfs",
    `--tmpdir=${join(dir, "libpod")}`,
    "--events-backend=file",
    "--cgroup-manager=cgroupfs",
    // With netavark, podman 4.3 as root creates /run/containers/networks whatever the flags say; the cni
    // backend keeps its state in --network-config-dir.
    "--network-backend=cni",
    `--network-config-dir=${join(dir, "networks")}`,
  ];
  return {
    podman(args, commandOptions = {}) {
      const [command = "", ...rest] = args;
      const policy = SIGNATURE_CHECKING.has(command) ? [`--signature-policy=${join(dir, "policy.json")}`] : [];
      return runCommand(podman, [...globalFlags, command, ...policy, ...rest], { env, ...commandOptions });
    },
    stop: () => work.stop(),
  };
}
