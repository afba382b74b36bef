#!/usr/bin/env node
import { HtpasswdError } from "../auth/authn/htpasswd-file.js";
import { ConfigError } from "../config/loader.js";
import { UsageError } from "./errors.js";
import { auditUsage, runAudit } from "./audit.js";
import { caUsage, runCa } from "./ca.js";
import { policyUsage, runPolicy } from "./policy.js";
import { registryUsage, runRegistry } from "./registry.js";
import { runServe, serveUsage } from "./serve.js";
import { runToken, tokenUsage } from "./token.js";
import { runUser, userUsage } from "./user.js";

const commands: Record<string, (argv: readonly string[]) => Promise<void>> = {
  serve: runServe,
  registry: runRegistry,
  ca: runCa,
  user: runUser,
  policy: runPolicy,
  audit: runAudit,
  token: runToken,
};

const usage = [
  "usage:",
  `  ${serveUsage}`,
  `  ${registryUsage}`,
  `  ${caUsage}`,
  `  ${userUsage}`,
  `  ${policyUsage}`,
  `  ${auditUsage}`,
  `  ${tokenUsage}`,
].join("\n");

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help") {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const run = commands[command];
  if (!run) throw new UsageError(`unknown command "${command}"\n${usage}`);
  await run(rest);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError || error instanceof ConfigError || error instanceof HtpasswdError) {
    process.stderr.write(`portcullis: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`portcullis: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
