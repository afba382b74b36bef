import type { IncomingMessage } from "node:http";
import type { AuditLog } from "../audit/audit-log.js";
import type { AuditEvent } from "../audit/event.js";
import type { Logger } from "../log.js";
import type { EndpointId } from "../registry/api.js";
import { looksLikeDigest } from "../registry/digest.js";
import type { OutcomeObserver, RegistryOutcome } from "../registry/outcome.js";
import type { ForwardedResolver } from "./forwarded.js";
import type { V2Request } from "./v2-request.js";

/** The request part of an audit record: who asked, from where, with what. */
export function requestContext(req: IncomingMessage, forwarded: ForwardedResolver): NonNullable<AuditEvent["request"]> {
  return {
    id: String(req.headers["x-request-id"] ?? ""),
    addr: forwarded(req).clientAddress,
    method: req.method,
    useragent: String(req.headers["user-agent"] ?? ""),
  };
}

type Act = (request: V2Request, outcome: RegistryOutcome) => Omit<AuditEvent, "actor" | "request"> | undefined;

const failed = (outcome: RegistryOutcome) =>
  outcome.kind === "refused" ? { result: "failure" as const, detail: { status: outcome.status } } : undefined;

const reference = ({ route }: V2Request) => {
  const ref = route.params.reference;
  return ref && !looksLikeDigest(ref) ? { tag: ref } : { digest: ref ?? route.params.digest };
};

/** Which endpoints are acts worth a record, and the record each outcome makes; `undefined` records nothing. */
const acts: Record<EndpointId, Act | undefined> = {
  "manifest.put": (request, outcome) => {
    const tag = reference(request).tag;
    const declared = String(request.req.headers["content-type"] ?? "").split(";")[0];
    const stored = outcome.kind === "manifest-stored" ? outcome : undefined;
    const digest = stored?.digest.text ?? reference(request).digest;
    return {
      action: "push",
      result: "success",
      target: {
        repository: request.route.params.name,
        ...(tag ? { tag } : {}),
        ...(digest ? { digest } : {}),
        ...(declared || stored?.mediaType ? { mediaType: declared || stored?.mediaType } : {}),
        ...(stored ? { size: stored.size } : {}),
      },
      ...failed(outcome),
    };
  },
  "manifest.get": (request, outcome) => {
    if (outcome.kind === "cache-filled") return cacheFilled(request, outcome);
    if (request.method !== "GET" || outcome.kind !== "manifest-served") return undefined;
    const tag = reference(request).tag;
    return {
      action: "pull",
      result: "success",
      target: {
        repository: request.route.params.name,
        ...(tag ? { tag } : {}),
        digest: outcome.digest.text,
        mediaType: outcome.mediaType,
        size: outcome.size,
      },
    };
  },
  "manifest.delete": (request, outcome) => deleted(request, outcome),
  "blob.delete": (request, outcome) => deleted(request, outcome),
  "upload.start": (request, outcome) =>
    outcome.kind === "mounted"
      ? {
          action: "mount",
          result: "success",
          target: { repository: request.route.params.name, digest: outcome.digest.text },
          detail: { from: request.query.get("from") },
        }
      : undefined,
  base: undefined,
  catalog: undefined,
  "blob.get": (request, outcome) => (outcome.kind === "cache-filled" ? cacheFilled(request, outcome) : undefined),
  "upload.status": undefined,
  "upload.chunk": undefined,
  "upload.complete": undefined,
  "upload.cancel": undefined,
  "tags.list": undefined,
  "referrers.list": undefined,
};

/** Content a mirror fetched from its upstream and stored, at the request of the caller. */
function cacheFilled(request: V2Request, fill: Extract<RegistryOutcome, { kind: "cache-filled" }>): ReturnType<Act> {
  const asked = request.route.params.name;
  return {
    action: "cache-fill",
    result: "success",
    target: { repository: fill.repository, digest: fill.digest.text, size: fill.size },
    detail: { upstream: fill.upstream, ...(asked !== fill.repository ? { requestedAs: asked } : {}) },
  };
}

function deleted(request: V2Request, outcome: RegistryOutcome): ReturnType<Act> {
  return {
    action: "delete",
    result: "success",
    target: { repository: request.route.params.name, ...reference(request) },
    ...failed(outcome),
  };
}

/**
 * Records the registry acts that pass through the gateway — manifest pushes and pulls, mounts, deletes —
 * from what the registry says it did, before its answer leaves, so an act the client saw succeed is always
 * on record. An act that cannot be recorded is not acknowledged: its answer is cut off.
 */
export function createActRecorder(deps: { audit: AuditLog; forwarded: ForwardedResolver; logger: Logger }) {
  return function observer(request: V2Request, actor: string): OutcomeObserver | undefined {
    const act = acts[request.route.endpoint.id];
    if (!act) return undefined;
    return (outcome) => {
      const event = act(request, outcome);
      if (!event) return;
      try {
        deps.audit.record({ ...event, actor: { name: actor }, request: requestContext(request.req, deps.forwarded) });
      } catch (error) {
        deps.logger.error(
          { err: error, requestId: request.requestId },
          "could not record the act; refusing its answer",
        );
        request.res.destroy();
      }
    };
  };
}
