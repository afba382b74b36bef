import { StorageFull, StorageUnavailable } from "./storage/errors.js";

/** The OCI distribution error codes and the HTTP status each one is answered with (spec.md, "Error Codes"). */
export const errorStatus = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  PAGINATION_NUMBER_INVALID: 400,
  UNAVAILABLE: 503,
  /** Not in the spec: a full disk, answered 507 Insufficient Storage (RFC 4918) so clients do not retry blindly. */
  STORAGE_FULL: 507,
  UNKNOWN: 500,
} as const;

export type ErrorCode = keyof typeof errorStatus;

/** A failure the registry answers with the spec's JSON error body. Thrown anywhere, rendered once. */
export class RegistryError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly detail?: unknown,
    status?: number,
  ) {
    super(message);
    this.name = "RegistryError";
    this.status = status ?? errorStatus[code];
  }

  toJSON(): { errors: { code: ErrorCode; message: string; detail?: unknown }[] } {
    const entry = {
      code: this.code,
      message: this.message,
      ...(this.detail === undefined ? {} : { detail: this.detail }),
    };
    return { errors: [entry] };
  }
}

export const blobUnknown = (digest: string) =>
  new RegistryError("BLOB_UNKNOWN", "blob unknown to registry", { digest });
export const manifestUnknown = (reference: string) =>
  new RegistryError("MANIFEST_UNKNOWN", "manifest unknown", { reference });
export const nameUnknown = (name: string) =>
  new RegistryError("NAME_UNKNOWN", "repository name not known to registry", { name });
export const uploadUnknown = (id: string) =>
  new RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", { id });
/** Out-of-order and mismatched chunks are 416 (spec.md, "Pushing a blob in chunks"). */
export const rangeInvalid = (message: string, detail?: unknown) =>
  new RegistryError("BLOB_UPLOAD_INVALID", message, detail, 416);

/**
 * The wire form of any failure, in one place: registry errors as they are, storage that is full (507) or
 * unreachable (503) with its cause, and anything else as 500 `UNKNOWN`.
 */
export function toRegistryError(error: unknown): RegistryError {
  if (error instanceof RegistryError) return error;
  if (error instanceof StorageFull) {
    return new RegistryError("STORAGE_FULL", "the registry's storage is full; free space and retry", {
      cause: error.reason,
    });
  }
  if (error instanceof StorageUnavailable) {
    return new RegistryError("UNAVAILABLE", "the registry's storage is unavailable; retry shortly", {
      cause: error.reason,
    });
  }
  return new RegistryError("UNKNOWN", "internal error");
}
