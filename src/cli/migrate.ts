import { UsageError } from "./errors.js";

export async function runMigrate(argv: readonly string[]): Promise<void> {
  throw new UsageError(`migrate is not built yet (got ${argv.length} arguments)`);
}
