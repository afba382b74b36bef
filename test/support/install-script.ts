import { createHash } from "node:crypto";
import { readFile, rmdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { runCommand, type CommandOptions, type CommandResult } from "./command.js";
import { requireTool } from "./tools.js";

/** Runs a program, possibly somewhere else (inside a network namespace, say). */
export type Runner = (file: string, args: readonly string[], options?: CommandOptions) => Promise<CommandResult>;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The SHA-256 (hex) of REGISTRY's `/ca/install.sh` as the server printed it at start, in the one-liner
 * `curl -fsSkg https://REGISTRY/ca/install.sh ... echo 'HEX  portcullis-ca.sh' | sha256sum -c -`: the value
 * an operator reads off the console.
 */
export function printedScriptChecksum(banner: string, registry: string): string {
  const line = new RegExp(`https://${escapeRegExp(registry)}/ca/install\\.sh .*?echo '([0-9a-f]{64}) {2}`);
  const match = line.exec(banner);
  if (match?.[1] === undefined)
    throw new Error(`the start banner prints no install one-liner for ${registry}:\n${banner}`);
  return match[1];
}

/**
 * Downloads `https://REGISTRY/ca/install.sh` to `path` as the printed one-liner does, with `curl -k` (the
 * client does not trust the CA yet: the checksum is what makes that safe), and returns the SHA-256 (hex)
 * of what arrived. `run` runs curl elsewhere, e.g. inside a network namespace.
 */
export async function downloadInstallScript(registry: string, path: string, run: Runner = runCommand): Promise<string> {
  const curl = requireTool("curl", "curl");
  // --noproxy: the request goes straight to the gateway whatever proxy the environment names.
  await run(curl, ["-fsSkg", "--noproxy", "*", `https://${registry}/ca/install.sh`, "-o", path]);
  return createHash("sha256")
    .update(await readFile(path))
    .digest("hex");
}

/** `sh SCRIPT ARGS...`, as the one-liner runs it; resolves with what the script printed. */
export function runInstallScript(path: string, args: readonly string[] = []): Promise<CommandResult> {
  return runCommand("/bin/sh", [path, ...args]);
}

export interface ClientInstall {
  /** The downloaded script, and the SHA-256 (hex) of what arrived. */
  script: string;
  checksum: string;
  /** podman/skopeo's cert dir for the registry (`--cert-dir`), as the script wrote it. */
  certDir: string;
  /** containerd's certs.d (`ctr --hosts-dir`), as the script wrote it. */
  hostsDir: string;
}

/**
 * Downloads REGISTRY's install script into `dir` and runs it with `--root DIR/client-root`: a client's trust
 * in the gateway's CA, set up the way an operator would, without touching this machine's own files.
 */
export async function installForClientRoot(registry: string, dir: string): Promise<ClientInstall> {
  const script = join(dir, "portcullis-ca.sh");
  const checksum = await downloadInstallScript(registry, script);
  const root = join(dir, "client-root");
  await runInstallScript(script, ["--root", root]);
  return {
    script,
    checksum,
    certDir: join(root, "etc", "containers", "certs.d", registry),
    hostsDir: join(root, "etc", "containerd", "certs.d"),
  };
}

/**
 * Every file the script installs for REGISTRY under ROOT ("" for this machine's own root), when run as
 * root: docker's and podman/skopeo's `certs.d/REGISTRY/ca.crt`, and containerd's `ca.crt` with its
 * `hosts.toml`.
 */
export function installedFiles(registry: string, root = ""): string[] {
  return [
    `${root}/etc/docker/certs.d/${registry}/ca.crt`,
    `${root}/etc/containers/certs.d/${registry}/ca.crt`,
    `${root}/etc/containerd/certs.d/${registry}/ca.crt`,
    `${root}/etc/containerd/certs.d/${registry}/hosts.toml`,
  ];
}

/** The `hosts.toml` containerd reads from `certs.d/REGISTRY/`: the registry over HTTPS, trusting `ca.crt` beside it. */
export function expectedHostsToml(registry: string): string {
  return (
    `server = "https://${registry}"\n` +
    `ca = "ca.crt"\n\n` +
    `[host."https://${registry}"]\n` +
    `  capabilities = ["pull", "resolve", "push"]\n` +
    `  ca = "ca.crt"\n`
  );
}

export interface MachineInstall {
  /** Runs the script as an operator does, as root with no `--root`: docker has no flag to move certs.d. */
  run(): Promise<CommandResult>;
  /** Uninstalls what `run` installed and removes the directories it made; nothing when it never ran. */
  undo(): Promise<void>;
}

/**
 * For a test that runs REGISTRY's install script (at `script`) on this machine's own root: refuses at once
 * when any file it would install is already there (so nothing of the machine's is overwritten or removed),
 * and notes the directories that do not exist yet, which `undo` removes again.
 */
export async function prepareMachineInstall(registry: string, script: string): Promise<MachineInstall> {
  const files = installedFiles(registry);
  for (const file of files) {
    if (await pathExists(file))
      throw new Error(`${file} exists before the test installed anything; refusing to overwrite or remove it`);
  }
  const createdDirectories = await missingDirectories(files);
  let installed = false;
  return {
    run() {
      installed = true;
      return runInstallScript(script);
    },
    async undo() {
      if (installed) await runInstallScript(script, ["--uninstall"]);
      for (const dir of createdDirectories) await rmdir(dir).catch(() => undefined);
    },
  };
}

function pathExists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * The directories among the parents of `files` (up to /etc) that do not exist yet, deepest first: what a test
 * that runs the script on this machine's root removes again afterwards.
 */
async function missingDirectories(files: readonly string[]): Promise<string[]> {
  const missing = new Set<string>();
  for (const file of files) {
    for (let dir = dirname(file); dir !== "/etc" && dir !== "/"; dir = dirname(dir)) {
      if (!(await pathExists(dir))) missing.add(dir);
    }
  }
  return [...missing].sort((a, b) => b.length - a.length);
}
