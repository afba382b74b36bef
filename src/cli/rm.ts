import { createAuditLog } from "../audit/audit-log.js";
import { createBlobStore } from "../registry/blob-store.js";
import type { Digest } from "../registry/digest.js";
import { RegistryError } from "../registry/errors.js";
import { createManifestStore } from "../registry/manifest-store.js";
import { createFilesystemDriver } from "../registry/storage/filesystem.js";
import { adminActor } from "./admin-actor.js";
import { hasSwitch, parseArgs, stringFlag } from "./args.js";
import { adminConfigFromArgs, commonFlags } from "./config-args.js";
import { UsageError } from "./errors.js";
import { parseImageReference, type ImageReference } from "./image-reference.js";
import { createRemoteRegistry } from "./remote-registry.js";
import { requireExisting } from "./server-state.js";

const rmUsage = "portcullis rm REPO:TAG | REPO@DIGEST [--all-tags] [--server URL [--ca FILE]]";

/**
 * Removes a tag (`REPO:TAG`), or a manifest and every tag on it (`REPO@DIGEST`, or `--all-tags` with a tag).
 * The space comes back with `portcullis gc`.
 */
export async function runRm(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags, "server", "ca"], ["all-tags"]);
  if (args.positionals.length !== 1) throw new UsageError(`usage: ${rmUsage}`);
  const reference = parseImageReference(args.positionals[0] as string, rmUsage);
  const allTags = hasSwitch(args, "all-tags");
  if (allTags && "digest" in reference) throw new UsageError(`--all-tags goes with REPO:TAG\nusage: ${rmUsage}`);
  const config = await adminConfigFromArgs(args);
  const server = stringFlag(args, "server");
  if (server) {
    const remote = await createRemoteRegistry({ server, ca: stringFlag(args, "ca"), certs: config.certs });
    const removed = await remote.remove(reference, allTags);
    process.stdout.write(`removed ${reference.repository}${removed.includes(":") ? "@" : ":"}${removed}\n`);
    return;
  }
  requireExisting(config.data, "the storage root", "--data DIR");
  const storage = createFilesystemDriver(config.data);
  const manifests = createManifestStore(storage, createBlobStore(storage));
  const target = await localTarget(manifests, reference, allTags);
  try {
    await manifests.delete(reference.repository, target);
  } catch (error) {
    if (error instanceof RegistryError && error.code === "MANIFEST_UNKNOWN") {
      throw new Error(`${args.positionals[0]}: no such ${"tag" in target ? "tag" : "manifest"}`);
    }
    throw error;
  }
  const audit = createAuditLog({ dataDir: config.data });
  audit.record({
    action: "delete",
    result: "success",
    actor: adminActor(),
    target: {
      repository: reference.repository,
      ...("tag" in target ? { tag: target.tag } : { digest: target.digest.text }),
    },
  });
  audit.close();
  const what =
    "tag" in target ? `${reference.repository}:${target.tag}` : `${reference.repository}@${target.digest.text}`;
  process.stdout.write(`removed ${what}; \`portcullis gc\` reclaims its space\n`);
}

async function localTarget(
  manifests: ReturnType<typeof createManifestStore>,
  reference: ImageReference,
  allTags: boolean,
): Promise<{ tag: string } | { digest: Digest }> {
  if ("digest" in reference) return { digest: reference.digest };
  if (!allTags) return { tag: reference.tag };
  try {
    return { digest: await manifests.resolve(reference.repository, { tag: reference.tag }) };
  } catch (error) {
    if (error instanceof RegistryError) throw new Error(`${reference.repository}:${reference.tag}: no such tag`);
    throw error;
  }
}
