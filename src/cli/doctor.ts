import { UsageError } from "./errors.js";

export async function runDoctor(argv: readonly string[]): Promise<void> {
  throw new UsageError(`doctor is not built yet (got ${argv.length} arguments)`);
}
