import { parseArgs as nodeParseArgs } from "node:util";
import { UsageError } from "./errors.js";

export interface ParsedArgs {
  positionals: string[];
  /** Every value given for each flag, in order; a switch maps to `[]`. */
  flags: Map<string, string[]>;
}

/**
 * `--name value`, `--name=value` and bare `--switch`, through Node's own parser. Each command says which
 * flags take a value, so a switch never swallows the next positional; `-` alone is a positional.
 */
export function parseArgs(
  argv: readonly string[],
  valueFlags: readonly string[],
  switches: readonly string[] = [],
): ParsedArgs {
  const options: Record<string, { type: "string" | "boolean"; multiple: true }> = {};
  for (const name of valueFlags) options[name] = { type: "string", multiple: true };
  for (const name of switches) options[name] = { type: "boolean", multiple: true };
  let parsed;
  try {
    parsed = nodeParseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(usageMessage(error as Error & { code?: string }, argv));
  }
  const flags = new Map<string, string[]>();
  for (const [name, value] of Object.entries(parsed.values)) {
    flags.set(name, switches.includes(name) ? [] : (value as string[]));
  }
  return { positionals: parsed.positionals, flags };
}

/** Node's messages, in the words the rest of the CLI uses. */
function usageMessage(error: Error & { code?: string }, argv: readonly string[]): string {
  const flag = /'(-[^' ]+)/.exec(error.message)?.[1] ?? "";
  switch (error.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown option ${argv.find((arg) => arg === flag || arg.startsWith(`${flag}=`)) ?? flag}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return /does not take an argument/.test(error.message) ? `${flag} takes no value` : `${flag} needs a value`;
    default:
      return error.message;
  }
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

/** A flag holding a whole number of at least `min`; undefined when absent. */
export function numberFlag(args: ParsedArgs, name: string, min = 1): number | undefined {
  const text = stringFlag(args, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError(`--${name} takes a whole number ≥ ${min}`);
  return value;
}
