import pino, { type Logger } from "pino";

export type { Logger };

/** Diagnostics only; secrets are redacted wherever a request or config object is logged. */
export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
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
    options.destination ?? pino.destination(2),
  );
}

export const silentLogger: Logger = pino({ level: "silent" });
