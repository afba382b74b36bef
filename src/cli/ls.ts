import { formatBytes } from "../gateway/console/html.js";
import { auditDir } from "../audit/audit-log.js";
import { createOrigins, describeOrigin, type RepositoryOrigin } from "../mirror/origin.js";
import { createInventory, type ImageSummary } from "../registry/inventory.js";
import { checkRepositoryName } from "../registry/names.js";
import { createFilesystemDriver } from "../registry/storage/filesystem.js";
import { hasSwitch, parseArgs, stringFlag } from "./args.js";
import { adminConfigFromArgs, commonFlags } from "./config-args.js";
import { UsageError } from "./errors.js";
import { createRemoteRegistry } from "./remote-registry.js";
import { requireExisting } from "./server-state.js";

const lsUsage = "portcullis ls [REPO] [--json] [--server URL [--ca FILE]]";

/** Repositories (and where a cached one comes from), or one repository's tags with digest, size, platforms and who pushed them when. */
export async function runLs(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags, "server", "ca"], ["json"]);
  if (args.positionals.length > 1) throw new UsageError(`usage: ${lsUsage}`);
  const repository = args.positionals[0];
  if (repository !== undefined) checkName(repository);
  const json = hasSwitch(args, "json");
  const config = await adminConfigFromArgs(args);
  const server = stringFlag(args, "server");
  const source = server
    ? await createRemoteRegistry({ server, ca: stringFlag(args, "ca"), certs: config.certs })
    : localInventory(config.data);
  if (repository === undefined) {
    const originOf = createOrigins(config);
    const listed = (await source.repositories()).map((name) => ({ name, origin: originOf(name) }));
    process.stdout.write(json ? `${JSON.stringify(listed)}\n` : repositoryTable(listed));
    return;
  }
  const images = await source.images(repository);
  if (json) {
    process.stdout.write(`${JSON.stringify(images)}\n`);
    return;
  }
  process.stdout.write(table(images));
}

function localInventory(data: string) {
  requireExisting(data, "the storage root", "--data DIR");
  const inventory = createInventory({ storage: createFilesystemDriver(data), auditDir: auditDir(data) });
  return {
    repositories: () => inventory.repositories(),
    async images(repository: string): Promise<ImageSummary[]> {
      const all: ImageSummary[] = [];
      let last: string | undefined;
      for (;;) {
        const page = await inventory.tags(repository, { ...(last ? { last } : {}), n: 1000 });
        all.push(...page.images);
        if (!page.next) return all;
        last = page.next;
      }
    },
  };
}

function checkName(name: string): void {
  try {
    checkRepositoryName(name);
  } catch {
    throw new UsageError(`${name}: not a repository name\nusage: ${lsUsage}`);
  }
}

/** Repositories one a line, with where a mirror's or a group's come from beside them. */
function repositoryTable(listed: readonly { name: string; origin?: RepositoryOrigin }[]): string {
  const width = Math.max(0, ...listed.filter((r) => r.origin).map((r) => r.name.length));
  return listed
    .map((r) => (r.origin ? `${r.name.padEnd(width)}  ${describeOrigin(r.origin)}\n` : `${r.name}\n`))
    .join("");
}

function table(images: readonly ImageSummary[]): string {
  const rows = [
    ["TAG", "DIGEST", "SIZE", "PLATFORMS", "PUSHED", "BY"],
    ...images.map((i) => [
      i.tag,
      i.digest.slice(0, 19),
      formatBytes(i.size),
      i.platforms.join(",") || "-",
      i.pushedAt ?? "-",
      i.pushedBy ?? "-",
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map(
      (r) =>
        `${r
          .map((cell, c) => cell.padEnd(widths[c]!))
          .join("  ")
          .trimEnd()}\n`,
    )
    .join("");
}
