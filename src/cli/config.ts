import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { loadConfig } from "../config/loader.js";
import { toJsonSchema } from "../config/json-schema.js";
import { referenceMarkdown } from "../config/reference.js";
import { configObjectSchema } from "../config/schema.js";
import { hasSwitch, parseArgs, stringFlag } from "./args.js";
import { commonFlags } from "./config-args.js";
import { UsageError } from "./errors.js";

const configUsage = "portcullis config verify [FILE] | config schema [--markdown]";

/** `config verify` loads a file as `serve` would, creating nothing; `config schema` prints the schema. */
export async function runConfig(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags], ["markdown"]);
  const [action, file, ...extra] = args.positionals;
  if (action === "verify" && extra.length === 0) {
    const path = file ?? stringFlag(args, "config");
    const config = await loadConfig({ file: path });
    const what = path
      ? resolve(path)
      : existsSync("portcullis.yaml")
        ? resolve("portcullis.yaml")
        : "no config file: the defaults";
    process.stdout.write(
      `ok: ${what} with the PORTCULLIS_* variables is valid (listen ${config.listen}, data ${config.data}, certs ${config.certs}, ` +
        `${config.policies ? `${config.policies.length} policy rules` : "the default policy"})\n`,
    );
    return;
  }
  if (action === "schema" && file === undefined) {
    if (hasSwitch(args, "markdown")) process.stdout.write(referenceMarkdown());
    else {
      const schema = {
        $schema: "https://json-schema.org/draft/2020-12/schema",
        title: "portcullis.yaml",
        ...toJsonSchema(configObjectSchema),
      };
      process.stdout.write(`${JSON.stringify(schema, null, 2)}\n`);
    }
    return;
  }
  throw new UsageError(`usage: ${configUsage}`);
}
