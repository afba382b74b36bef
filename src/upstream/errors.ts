/** Why a request to an upstream got no usable answer. */
export type UpstreamFailure =
  /** Refused, reset or unresolvable: nothing answers there. */
  | "unreachable"
  /** No connection, or no first byte, or silence mid-body, within the configured time. */
  | "timeout"
  /** The upstream's certificate is not trusted (not from `ca` or the system's CAs, expired, wrong name). */
  | "certificate"
  /** The upstream or its token service refused the gateway's own credentials. */
  | "credentials"
  /** The token service answered, but not with a token. */
  | "token-service"
  /** A file the config names (ca, passwordFile) cannot be read. */
  | "config"
  /** The caller gave up (its signal fired). */
  | "aborted";

/** A request to a named upstream that failed; the message names the upstream, never a credential. */
export class UpstreamError extends Error {
  constructor(
    readonly upstream: string,
    readonly failure: UpstreamFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`upstream "${upstream}": ${message}`, options);
    this.name = "UpstreamError";
  }
}

const certificateCodes = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** The transport error `error` of a request to `upstream` at `where`, as an UpstreamError that says what failed. */
export function transportError(upstream: string, where: string, error: unknown): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const { code, message, name } = error as NodeJS.ErrnoException;
  if (name === "AbortError" || code === "ABORT_ERR")
    return new UpstreamError(upstream, "aborted", `the request to ${where} was aborted`, { cause: error });
  if (code !== undefined && certificateCodes.has(code))
    return new UpstreamError(
      upstream,
      "certificate",
      `the certificate of ${where} failed verification (${code}: ${message}); set upstreams.${upstream}.ca to the CA that issued it`,
      { cause: error },
    );
  return new UpstreamError(upstream, "unreachable", `${where} is not reachable (${code ?? message})`, {
    cause: error,
  });
}
