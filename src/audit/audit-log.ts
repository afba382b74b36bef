import { join } from "node:path";
import pino from "pino";
import type { AuditEvent } from "./event.js";
import { createChainFile } from "./chain-file.js";

/** Thrown by `record` when the record cannot be written: the act it records must then be refused. */
export { AuditUnavailable } from "./chain-file.js";

export interface AuditLog {
  /** Writes the record before returning: call it before answering the act it records. */
  record(event: AuditEvent): void;
  close(): void;
}

export interface AuditLogOptions {
  /** The data directory; the log lives in its `audit/` folder. */
  dataDir: string;
  maxBytes?: number;
  daily?: boolean;
  now?: () => Date;
}

export const auditDir = (dataDir: string) => join(dataDir, "audit");

/** The audit log: JSON lines through pino into a hash-chained, rotated file of its own, apart from diagnostics. */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  const file = createChainFile({
    dir: auditDir(options.dataDir),
    maxBytes: options.maxBytes ?? 64 * 1024 * 1024,
    daily: options.daily ?? true,
    now: options.now,
  });
  const logger = pino(
    {
      base: undefined,
      messageKey: "message",
      // No level in an audit record, and the time as its first field (pino puts the timestamp text as is).
      formatters: { level: () => ({}) },
      timestamp: () => `"time":"${(options.now?.() ?? new Date()).toISOString()}"`,
    },
    { write: (line: string) => file.write(line) },
  );
  return {
    record(event) {
      logger.info(event);
    },
    close() {
      file.close();
    },
  };
}

/** An audit log that keeps nothing, for tests of other parts and for tools that record no acts. */
export const noAudit: AuditLog = { record: () => undefined, close: () => undefined };
