import type { Digest } from "./digest.js";

/**
 * What a registry request did, told to whoever called the registry before the answer is written, so an act
 * is on record before the client sees it acknowledged (the gateway's audit log). Only acts worth a record
 * have a kind of their own; every refusal is `refused`.
 */
export type RegistryOutcome =
  | { kind: "manifest-stored"; digest: Digest; mediaType: string; size: number }
  | { kind: "manifest-served"; digest: Digest; mediaType: string; size: number }
  | { kind: "deleted" }
  | { kind: "mounted"; digest: Digest }
  /** A mirror fetched content from its upstream into `repository` (a manifest or a blob). */
  | { kind: "cache-filled"; repository: string; upstream: string; digest: Digest; size: number }
  | { kind: "refused"; status: number };

/** Never throws: an observer that cannot keep the act on record cuts the answer itself. */
export type OutcomeObserver = (outcome: RegistryOutcome) => void;
