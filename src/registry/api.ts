/**
 * The whole HTTP API of the registry in one table, read top to bottom: method, path, what the endpoint is
 * and the repository action it needs (OCI distribution-spec v1.1, endpoints end-1 … end-13, plus the
 * catalog). The registry binds handlers to these ids; the gateway derives the scope a request needs from
 * this same table.
 */
export type Action = "pull" | "push" | "delete";

export type EndpointId =
  | "base"
  | "catalog"
  | "blob.get"
  | "blob.delete"
  | "upload.start"
  | "upload.status"
  | "upload.chunk"
  | "upload.complete"
  | "upload.cancel"
  | "manifest.get"
  | "manifest.put"
  | "manifest.delete"
  | "tags.list"
  | "referrers.list";

export interface Endpoint {
  id: EndpointId;
  methods: readonly string[];
  pattern: RegExp;
  /** Names of the pattern's capture groups, in order. */
  params: readonly ("name" | "reference" | "digest" | "id")[];
  /** What the caller must be allowed to do to the repository; `catalog` is registry-wide. */
  needs: readonly Action[] | "catalog" | "nothing";
}

const name = "(.+)";

// prettier-ignore
export const endpoints: readonly Endpoint[] = [
  { id: "base",            methods: ["GET", "HEAD"], pattern: /^\/v2\/?$/,                      params: [],                    needs: "nothing" },
  { id: "catalog",         methods: ["GET"],         pattern: /^\/v2\/_catalog$/,                params: [],                    needs: "catalog" },
  { id: "upload.start",    methods: ["POST"],        pattern: re(`${name}/blobs/uploads/?`),       params: ["name"],              needs: ["pull", "push"] },
  { id: "upload.status",   methods: ["GET"],         pattern: re(`${name}/blobs/uploads/([^/]+)`), params: ["name", "id"],        needs: ["pull"] },
  { id: "upload.chunk",    methods: ["PATCH"],       pattern: re(`${name}/blobs/uploads/([^/]+)`), params: ["name", "id"],        needs: ["pull", "push"] },
  { id: "upload.complete", methods: ["PUT"],         pattern: re(`${name}/blobs/uploads/([^/]+)`), params: ["name", "id"],        needs: ["pull", "push"] },
  { id: "upload.cancel",   methods: ["DELETE"],      pattern: re(`${name}/blobs/uploads/([^/]+)`), params: ["name", "id"],        needs: ["delete"] },
  { id: "blob.get",        methods: ["GET", "HEAD"], pattern: re(`${name}/blobs/([^/]+)`),         params: ["name", "digest"],    needs: ["pull"] },
  { id: "blob.delete",     methods: ["DELETE"],      pattern: re(`${name}/blobs/([^/]+)`),         params: ["name", "digest"],    needs: ["delete"] },
  { id: "manifest.get",    methods: ["GET", "HEAD"], pattern: re(`${name}/manifests/([^/]+)`),     params: ["name", "reference"], needs: ["pull"] },
  { id: "manifest.put",    methods: ["PUT"],         pattern: re(`${name}/manifests/([^/]+)`),     params: ["name", "reference"], needs: ["pull", "push"] },
  { id: "manifest.delete", methods: ["DELETE"],      pattern: re(`${name}/manifests/([^/]+)`),     params: ["name", "reference"], needs: ["delete"] },
  { id: "tags.list",       methods: ["GET"],         pattern: re(`${name}/tags/list`),             params: ["name"],              needs: ["pull"] },
  { id: "referrers.list",  methods: ["GET"],         pattern: re(`${name}/referrers/([^/]+)`),     params: ["name", "digest"],    needs: ["pull"] },
];

export type RouteParams = Partial<Record<Endpoint["params"][number], string>>;

export type RouteMatch =
  | { kind: "found"; endpoint: Endpoint; params: RouteParams }
  | { kind: "wrong-method"; allowed: string[] }
  | { kind: "not-found" };

/** Matches the raw request path (never URL-decoded or normalised, so `%2e%2e` stays in the name and fails). */
export function matchEndpoint(method: string, path: string): RouteMatch {
  const allowed: string[] = [];
  for (const endpoint of endpoints) {
    const match = endpoint.pattern.exec(path);
    if (!match) continue;
    if (!endpoint.methods.includes(method)) {
      allowed.push(...endpoint.methods);
      continue;
    }
    const params: RouteParams = {};
    endpoint.params.forEach((param, i) => (params[param] = match[i + 1]));
    return { kind: "found", endpoint, params };
  }
  return allowed.length > 0 ? { kind: "wrong-method", allowed } : { kind: "not-found" };
}

function re(path: string): RegExp {
  return new RegExp(`^/v2/${path}$`);
}
