/**
 * One security-relevant act. A superset of what distribution's notification events carry (`actor`,
 * `target{repository, tag, digest, mediaType, size}`, `request{id, addr, method, useragent}`), so a record
 * can later be sent as a webhook as it is.
 */
export interface AuditEvent {
  action: AuditAction;
  result: "success" | "failure" | "denied";
  actor: { name: string; source?: string };
  request?: { id?: string; addr?: string; method?: string; useragent?: string };
  target?: { repository?: string; tag?: string; digest?: string; mediaType?: string; size?: number; user?: string };
  detail?: Record<string, unknown>;
}

/** Every act the log records, in one list: the type, `audit --action` and the docs come from it. */
export const auditActions = [
  "login",
  "token",
  "push",
  "pull",
  "mount",
  "cache-fill",
  "delete",
  "denied",
  "rate-limit",
  "user.add",
  "user.passwd",
  "user.rm",
  "key.rotate",
  "ca.renew",
  "gc",
] as const;

export type AuditAction = (typeof auditActions)[number];

/** A stored record: the event with its place in the chain. */
export interface AuditRecord extends AuditEvent {
  time: string;
  seq: number;
  /** SHA-256 of the previous record's line (the genesis value for the very first). */
  prev: string;
}

export const genesisHash = "0".repeat(64);
