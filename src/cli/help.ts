import { commands, commonFlagHelp, type CommandEntry } from "./commands.js";

/** `portcullis --help`: every command's usage, and where to read more. */
export function generalHelp(): string {
  const lines = ["usage: portcullis COMMAND [ARGS] [--config FILE] [--data DIR] [--certs DIR]", "", "commands:"];
  const width = Math.max(...commands.map((c) => c.name.length));
  for (const command of commands) lines.push(`  ${command.name.padEnd(width)}  ${command.summary}`);
  lines.push(
    "",
    "portcullis help COMMAND (or COMMAND --help) shows a command's flags and examples; portcullis --version the version.",
    "Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.",
    "",
    "example:",
    "  portcullis init && portcullis serve",
  );
  return `${lines.join("\n")}\n`;
}

/** `portcullis COMMAND --help` (or `help COMMAND [SUBCOMMAND]`): usage, flags and at least one example. */
export function commandHelp(command: CommandEntry, subcommandName?: string): string {
  const sub = command.subcommands?.find((s) => s.name === subcommandName);
  const lines = [
    `portcullis ${command.name}${sub ? ` ${sub.name}` : ""}: ${sub?.summary ?? command.summary}`,
    "",
    "usage:",
  ];
  for (const usage of sub ? [sub.usage] : command.usage) lines.push(`  ${usage}`);
  if (!sub && command.subcommands) {
    lines.push("", "subcommands:");
    const width = Math.max(...command.subcommands.map((s) => s.name.length));
    for (const s of command.subcommands) lines.push(`  ${s.name.padEnd(width)}  ${s.summary}`);
  }
  const flags = [...command.flags, ...(command.commonFlags === false ? [] : commonFlagHelp)];
  if (flags.length > 0) {
    lines.push("", "flags:");
    const width = Math.max(...flags.map(([flag]) => flag.length));
    for (const [flag, text] of flags) lines.push(`  ${flag.padEnd(width)}  ${text}`);
    lines.push(`  ${"-h, --help".padEnd(width)}  this help`);
  }
  const examples = sub?.examples ?? command.examples;
  lines.push("", examples.length > 1 ? "examples:" : "example:", ...examples.map((e) => `  ${e}`));
  return `${lines.join("\n")}\n`;
}

/** Whether ARGV asks for help: `-h` or `--help` anywhere before a `--`. */
export function asksForHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end < 0 ? argv : argv.slice(0, end)).some((arg) => arg === "-h" || arg === "--help");
}
