import { UsageError } from "./errors.js";

export interface ParsedArgs {
  positionals: string[];
  /** Every value given for each flag, in order; a switch maps to `[]`. */
  flags: Map<string, string[]>;
}

/**
 * `--name value`, `--name=value` and bare `--switch`. Each command says which flags take a value, so a
 * switch never swallows the next positional.
 */
export function parseArgs(
  argv: readonly string[],
  valueFlags: readonly string[],
  switches: readonly string[] = [],
): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) {
      positionals.push(arg);
      continue;
    }
    const [name, inline] = splitOnce(arg.slice(2), "=");
    if (valueFlags.includes(name)) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      flags.set(name, [...(flags.get(name) ?? []), value]);
    } else if (switches.includes(name)) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      flags.set(name, []);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return { positionals, flags };
}

/** The last value given for a flag. */
export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  return args.flags.get(name)?.at(-1);
}

export function listFlag(args: ParsedArgs, name: string): string[] {
  return args.flags.get(name) ?? [];
}

export function hasSwitch(args: ParsedArgs, name: string): boolean {
  return args.flags.has(name);
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}
