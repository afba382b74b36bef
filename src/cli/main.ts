#!/usr/bin/env -S node --max-semi-space-size=4
import { readFileSync } from "node:fs";
import { HtpasswdError } from "../auth/authn/htpasswd-file.js";
import { ConfigError } from "../config/loader.js";
import { findCommand } from "./commands.js";
import { UsageError } from "./errors.js";
import { asksForHelp, commandHelp, generalHelp } from "./help.js";

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return `portcullis ${pkg.version}\n`;
}

async function main(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h") {
    process.stdout.write(generalHelp());
    return;
  }
  if (name === "--version" || name === "-V" || name === "version") {
    process.stdout.write(version());
    return;
  }
  if (name === "help") {
    const [topic, sub] = rest;
    if (topic === undefined) {
      process.stdout.write(generalHelp());
      return;
    }
    const command = findCommand(topic);
    if (!command) throw new UsageError(`no command "${topic}"\n${generalHelp()}`);
    process.stdout.write(commandHelp(command, sub));
    return;
  }
  const command = findCommand(name);
  if (!command) throw new UsageError(`unknown command "${name}"\n${generalHelp()}`);
  if (asksForHelp(rest)) {
    process.stdout.write(commandHelp(command, rest[0]));
    return;
  }
  await command.run(rest);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError || error instanceof ConfigError || error instanceof HtpasswdError) {
    process.stderr.write(`portcullis: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`portcullis: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
