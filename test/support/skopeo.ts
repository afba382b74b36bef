import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { runCommand, type CommandOptions, type CommandResult } from "./command.js";
import { sha256, type ImageContent } from "./images.js";
import { requireTool } from "./tools.js";

/** Runs skopeo with `args`; rejects with its stderr when it fails. */
export function skopeo(args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  return runCommand(requireTool("skopeo", "skopeo"), args, options);
}

function isPlainHttpLoopback(reference: string): boolean {
  return /^docker:\/\/(127\.\d+\.\d+\.\d+|localhost)(:\d+)?\//.test(reference);
}

function tlsFlags(reference: string, flag: string): string[] {
  if (!reference.startsWith("docker://")) return [];
  // skopeo checks TLS even on loopback. Only these plain-HTTP registry-layer tests turn it off, and only
  // for 127.0.0.0/8, so no test can reach another address without TLS by accident.
  if (!isPlainHttpLoopback(reference)) throw new Error(`refusing plain HTTP to a registry off loopback: ${reference}`);
  return [`${flag}=false`];
}

export interface CopyOptions {
  /** Copy every image of an index (`--all`) instead of the one for this machine's platform. */
  all?: boolean;
  /** e.g. "v2s2", "oci" */
  format?: string;
}

/**
 * `skopeo copy` between transports (`dir:`, `oci:`, `docker://127.0.0.1:PORT/...`), refusing to change
 * any digest (`--preserve-digests`) unless a `format` conversion is asked for.
 */
export async function copyImage(
  source: string,
  destination: string,
  options: CopyOptions = {},
): Promise<CommandResult> {
  const args = ["copy", "--retry-times", "0"];
  args.push(...tlsFlags(source, "--src-tls-verify"), ...tlsFlags(destination, "--dest-tls-verify"));
  if (options.all === true) args.push("--all");
  if (options.format === undefined) args.push("--preserve-digests");
  else args.push("--format", options.format);
  // skopeo makes the `dir:` directory itself but not its parent.
  if (destination.startsWith("dir:")) await mkdir(dirname(destination.slice("dir:".length)), { recursive: true });
  return skopeo([...args, source, destination]);
}

/** The manifest exactly as the registry serves it (`skopeo inspect --raw`). */
export async function inspectRaw(reference: string): Promise<Buffer> {
  const { stdout } = await skopeo(["inspect", "--raw", ...tlsFlags(reference, "--tls-verify"), reference]);
  return Buffer.from(stdout, "utf8");
}

export async function listTags(reference: string): Promise<string[]> {
  const { stdout } = await skopeo(["list-tags", ...tlsFlags(reference, "--tls-verify"), reference]);
  return (JSON.parse(stdout) as { Tags: string[] }).Tags;
}

async function fileDigest(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return `sha256:${hash.digest("hex")}`;
}

/**
 * Reads what `skopeo copy ... dir:DIR` wrote: every manifest (`manifest.json`, and `HEX.manifest.json`
 * per instance of an index) and every blob, each hashed from its bytes on disk. Throws when a file's
 * content does not match the digest in its name, i.e. a corrupted copy.
 */
export async function readDirCopy(dir: string): Promise<ImageContent> {
  const manifests = new Map<string, Buffer>();
  const blobs = new Map<string, number>();
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if (name === "version" || name.startsWith("signature")) continue;
    if (name === "manifest.json" || name.endsWith(".manifest.json")) {
      const bytes = await readFile(path);
      const digest = sha256(bytes);
      if (name !== "manifest.json" && `sha256:${name.slice(0, -".manifest.json".length)}` !== digest) {
        throw new Error(`${path} holds a manifest whose digest is ${digest}`);
      }
      manifests.set(digest, bytes);
      continue;
    }
    const digest = await fileDigest(path);
    if (`sha256:${name}` !== digest) throw new Error(`${path} holds a blob whose digest is ${digest}`);
    blobs.set(digest, (await stat(path)).size);
  }
  return { manifests, blobs };
}

export interface TlsClientOptions {
  /** `--cert-dir` for the registry: trust only the CA in it. By default, the system's trust store. */
  certDir?: string;
  /** USER:PASSWORD for the registry. */
  creds?: string;
  /** `--policy`; by default skopeo's own. */
  policy?: string;
  env?: NodeJS.ProcessEnv;
}

function tlsClientFlags(prefix: string, options: TlsClientOptions): string[] {
  return [
    ...(options.certDir === undefined ? [] : [`--${prefix}cert-dir`, options.certDir]),
    ...(options.creds === undefined ? [] : [`--${prefix}creds`, options.creds]),
  ];
}

function policyFlags(options: TlsClientOptions): string[] {
  return options.policy === undefined ? [] : ["--policy", options.policy];
}

/**
 * `skopeo copy` keeping every digest, to or from a registry checked over TLS: the cert dir and credentials
 * go to whichever side is `docker://`.
 */
export function copyOverTls(source: string, destination: string, options: TlsClientOptions): Promise<CommandResult> {
  const side = source.startsWith("docker://") ? "src-" : "dest-";
  return skopeo(
    [
      ...policyFlags(options),
      "copy",
      "--retry-times",
      "0",
      "--preserve-digests",
      ...tlsClientFlags(side, options),
      source,
      destination,
    ],
    { env: options.env },
  );
}

/** Pulls `reference` (`docker://…`) over TLS into `dir:DIR`, and reads back what arrived (see readDirCopy). */
export async function pullOverTls(reference: string, dir: string, options: TlsClientOptions): Promise<ImageContent> {
  await copyOverTls(reference, `dir:${dir}`, options);
  return readDirCopy(dir);
}

/** The manifest exactly as a registry checked over TLS serves it (`skopeo inspect --raw`). */
export function inspectRawOverTls(reference: string, options: TlsClientOptions): Promise<CommandResult> {
  return skopeo([...policyFlags(options), "inspect", "--raw", ...tlsClientFlags("", options), reference], {
    env: options.env,
  });
}
