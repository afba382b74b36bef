// Command-line flags of a benchmark: `--flag value`, `--flag=value`, and -h/--help printing its usage.

export function usageError(usage, message) {
  console.error(`${message}\n${usage}`);
  process.exit(2);
}

export function positiveInt(usage, flag, value) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) usageError(usage, `${flag} needs a positive integer, got ${value}`);
  return n;
}

/**
 * Calls `handle(flag, value)` for every flag in `argv`, where `value()` takes the flag's value (after `=`, or
 * the next argument). A flag `handle` does not know (it returns false) is a usage error.
 */
export function parseFlags(argv, usage, handle) {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? arg.split(/=(.*)/s) : [arg];
    const value = () => inline ?? argv[++i] ?? usageError(usage, `${flag} needs a value`);
    if (flag === "-h" || flag === "--help") {
      console.log(usage);
      process.exit(0);
    }
    if (handle(flag, value) === false) usageError(usage, `unknown option ${arg}`);
  }
}
