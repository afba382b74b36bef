import { checkStorage, type Problem } from "../registry/fsck.js";
import { createFilesystemDriver } from "../registry/storage/filesystem.js";
import { hasSwitch, parseArgs } from "./args.js";
import { adminConfigFromArgs, commonFlags } from "./config-args.js";
import { UsageError } from "./errors.js";
import { requireExisting } from "./server-state.js";

const fsckUsage = "portcullis fsck [--repair] [--json]";

/**
 * Checks the server's storage root for what a crash or a full disk left behind; `--repair` removes what is
 * safe to. Exits 1 while a problem is left unrepaired, so a script can run it after an unclean stop.
 */
export async function runFsck(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags], ["repair", "json"]);
  if (args.positionals.length > 0) throw new UsageError(`usage: ${fsckUsage}`);
  const config = await adminConfigFromArgs(args);
  // A storage root that is not there is a wrong --data, not a consistent (empty) registry.
  requireExisting(config.data, "the storage root", "--data DIR");
  const repair = hasSwitch(args, "repair");
  const problems = await checkStorage(createFilesystemDriver(config.data), { repair });
  if (hasSwitch(args, "json")) {
    for (const problem of problems) process.stdout.write(`${JSON.stringify(problem)}\n`);
  } else {
    for (const problem of problems) process.stdout.write(`${describe(problem)}\n`);
    process.stdout.write(summary(problems, repair, config.data));
  }
  if (problems.some((p) => !p.repaired)) process.exitCode = 1;
}

const describe = (p: Problem) => `${p.repaired ? "repaired" : "found"} ${p.kind}: ${p.path}: ${p.detail}`;

function summary(problems: Problem[], repair: boolean, root: string): string {
  if (problems.length === 0) return `ok: ${root} is consistent\n`;
  if (repair) return `${problems.length} problems repaired in ${root}\n`;
  return `${problems.length} problems in ${root}; run \`portcullis fsck --repair\` to remove what is safe to\n`;
}
