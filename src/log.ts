import { Writable } from "node:stream";
import { inspect } from "node:util";
import pino, { type Logger } from "pino";

export type { Logger };

export interface LoggerOptions {
  level?: string;
  destination?: pino.DestinationStream;
  /** Human-readable lines instead of JSON; by default when standard error is a terminal and no destination is given. */
  pretty?: boolean;
}

/**
 * Diagnostics only; secrets are redacted wherever a request or config object is logged. JSON lines for a
 * file or a journal, readable lines on a terminal.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? (options.destination === undefined && process.stderr.isTTY === true);
  const destination = pretty
    ? prettyStream((options.destination as NodeJS.WritableStream | undefined) ?? process.stderr)
    : (options.destination ?? pino.destination(2));
  return pino(
    {
      level: options.level ?? "info",
      base: undefined,
      redact: {
        paths: [
          "req.headers.authorization",
          "req.headers.cookie",
          "headers.authorization",
          "*.password",
          "*.token",
          "*.access_token",
          "*.refresh_token",
          "password",
          "token",
        ],
        censor: "[redacted]",
      },
    },
    destination,
  );
}

export const silentLogger: Logger = pino({ level: "silent" });

/** The level an access-log line is written at: health checks and scrapes, which come every few seconds, at debug. */
export function requestLogLevel(path: string): "debug" | "info" {
  return path === "/healthz" || path === "/readyz" || path === "/metrics" ? "debug" : "info";
}

const levelNames: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};
const levelColours: Record<number, number> = { 10: 90, 20: 90, 30: 32, 40: 33, 50: 31, 60: 35 };

/**
 * pino's JSON lines as a person reads them: `12:00:01.234 INFO  request method=GET path=/v2/ status=401`.
 * Colours only on a terminal.
 */
export function prettyStream(out: NodeJS.WritableStream & { isTTY?: boolean }): Writable {
  const colour = out.isTTY === true;
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) out.write(`${prettyLine(line, colour)}\n`);
      done();
    },
  });
}

export function prettyLine(line: string, colour = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { level, time, msg, err, ...rest } = entry;
  const name = (levelNames[level as number] ?? String(level)).padEnd(5);
  const clock = typeof time === "number" ? new Date(time).toISOString().slice(11, 23) : "";
  const fields = Object.entries(rest).map(
    ([key, value]) =>
      `${key}=${typeof value === "string" ? value : inspect(value, { breakLength: Infinity, depth: 4 })}`,
  );
  const error =
    err && typeof err === "object"
      ? `\n  ${String((err as { stack?: string; message?: string }).stack ?? (err as { message?: string }).message)}`
      : "";
  const shownLevel = colour ? `\u001b[${levelColours[level as number] ?? 0}m${name}\u001b[0m` : name;
  return `${clock} ${shownLevel} ${String(msg ?? "")}${fields.length ? ` ${fields.join(" ")}` : ""}${error}`;
}
