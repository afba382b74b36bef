import { createHash } from "node:crypto";

/** A seeded generator (mulberry32), so a failing run can be replayed from the seed it prints. */
export function createRandom(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (below: number) => Math.floor(next() * below);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const bytes = (length: number) => Buffer.from(Array.from({ length }, () => int(256)));
  const text = (length: number, alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_./:%@~!$&'()*+,;=") =>
    Array.from({ length }, () => alphabet[int(alphabet.length)]).join("");
  return { next, int, pick, bytes, text };
}

export type Random = ReturnType<typeof createRandom>;

export interface HostileRequest {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Sent on a raw TLS socket as these bytes (a request HTTP clients cannot even form), then the socket is closed. */
  raw?: Buffer;
}

const hex = (seed: string) => createHash("sha256").update(seed).digest("hex");

/** What the generator may put where a name, a reference or a digest belongs. */
// Each part of a request is broken on its own, so most requests get past the other checks to the code behind them.
function names(r: Random, valid: readonly string[]): string {
  if (r.int(10) < 7) return r.pick(valid);
  return r.pick([
    () => r.pick(valid),
    () => r.pick(valid),
    () => r.pick(valid).toUpperCase(),
    () => `${r.pick(valid)}/${r.text(r.int(20))}`,
    () => r.text(1 + r.int(300)),
    () => "../".repeat(1 + r.int(6)) + "etc/passwd",
    () => `${r.pick(valid)}%2F..%2F${r.pick(valid)}`,
    () => "a".repeat(256 + r.int(4000)),
    () => "é/ü",
    () => "",
    () => "_uploads",
    () => `${r.pick(valid)}/_manifests`,
  ])();
}

function digest(r: Random): string {
  return r.pick([
    () => `sha256:${hex(String(r.next()))}`,
    () => `sha256:${hex(String(r.next())).toUpperCase()}`,
    () => `sha256:${hex(String(r.next())).slice(0, 63)}`,
    () => `sha512:${hex("a")}`,
    () => `md5:${hex("b").slice(0, 32)}`,
    () => "sha256:totallywrong",
    () => `sha256:${"0".repeat(64)}`,
    () => r.text(r.int(90)),
    () => "sha256:",
    () => `sha256:${hex("c")}%00`,
  ])();
}

function reference(r: Random): string {
  if (r.int(10) < 6) return r.pick(["latest", "v1", "v2"]);
  return r.pick([() => "latest", () => r.text(1 + r.int(140)), () => digest(r), () => "-bad", () => ".."])();
}

const manifestTypes = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "text/plain",
  "",
];

const validManifest = () => ({
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${hex("config")}`, size: 2 },
  layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${hex("layer")}`, size: 9 }],
  subject: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: `sha256:${hex("s")}`, size: 3 },
  annotations: { a: "b" },
});

/** A valid manifest with one field (at any depth) replaced by a wrong value or removed: gets past the shape checks before it. */
function oneFieldWrong(r: Random): Record<string, unknown> {
  const manifest = validManifest() as Record<string, unknown>;
  const wrong = r.pick([null, "", "x", -1, 1.5, 1e300, [], {}, true, [[[]]], "a".repeat(10_000), { digest: 1 }]);
  const paths = ["schemaVersion", "mediaType", "config", "layers", "subject", "annotations", "manifests"];
  const nested = ["config.digest", "config.size", "config.mediaType", "layers.0", "layers.0.digest", "layers.0.size"];
  const path = r.pick([...paths, ...nested, "subject.digest", "annotations.a", "layers.0.urls"]).split(".");
  let holder = manifest as Record<string, unknown>;
  for (const key of path.slice(0, -1)) holder = holder[key] as Record<string, unknown>;
  const last = path.at(-1) as string;
  if (r.int(4) === 0) delete holder[last];
  else holder[last] = wrong;
  return manifest;
}

/** A JSON body of some wrong shape: wrong types, missing fields, deep nesting, huge lists, bad descriptors. */
function manifestBody(r: Random): Buffer {
  if (r.int(2) === 0) return Buffer.from(JSON.stringify(oneFieldWrong(r)));
  const descriptor = () =>
    r.pick([
      () => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: digest(r), size: r.int(1e6) }),
      () => ({ mediaType: 7, digest: digest(r), size: -1 }),
      () => ({ digest: digest(r) }),
      () => ({ mediaType: "x", digest: digest(r), size: 1e300 }),
      () => null,
      () => "layer",
      () => ({ mediaType: "x", digest: digest(r), size: 1, urls: ["http://127.0.0.1:1/"] }),
    ])();
  const shape = r.pick([
    () => ({ schemaVersion: 2, mediaType: r.pick(manifestTypes), config: descriptor(), layers: [descriptor()] }),
    () => ({ schemaVersion: 2, config: descriptor(), layers: Array.from({ length: r.int(2_000) }, descriptor) }),
    () => ({ schemaVersion: 2, mediaType: manifestTypes[1], manifests: Array.from({ length: r.int(50) }, descriptor) }),
    () => ({ schemaVersion: r.pick([1, 3, "2", null]), layers: "none" }),
    () => ({ schemaVersion: 2, config: descriptor(), layers: [descriptor()], subject: descriptor() }),
    () => JSON.parse(`${"[".repeat(1 + r.int(5_000))}${"]".repeat(1 + r.int(5_000))}`.replace(/\]\[/g, "],[") || "0"),
    () => [1, 2, 3],
    () => "manifest",
    () => null,
  ]);
  let json: string;
  try {
    json = JSON.stringify(shape());
  } catch {
    json = "[[[[";
  }
  return r.pick([
    () => Buffer.from(json),
    () => Buffer.from(json.slice(0, r.int(json.length + 1))),
    () => r.bytes(r.int(4096)),
    () => Buffer.from(`{"schemaVersion":2,"layers":[${'{"a":1},'.repeat(r.int(100_000))}{}]}`),
    () => Buffer.alloc(4 * 1024 * 1024 + 1 + r.int(1024), 0x20),
  ])();
}

function authorization(r: Random, token: string): Record<string, string> {
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const [head, claims, signature] = token.split(".") as [string, string, string];
  if (r.int(10) < 7) return { Authorization: `Bearer ${token}` };
  return r.pick([
    () => ({ Authorization: `Bearer ${token}` }),
    () => ({ Authorization: `Bearer ${token}` }),
    () => ({ Authorization: `Bearer ${token}` }),
    () => ({}),
    () => ({ Authorization: `Bearer ${r.text(r.int(400))}` }),
    () => ({ Authorization: `Bearer ${b64({ alg: "none" })}.${claims}.` }),
    () => ({ Authorization: `Bearer ${b64({ alg: "HS256", typ: "JWT" })}.${claims}.${signature}` }),
    () => ({ Authorization: `Bearer ${head}.${b64({ access: "all", exp: 1e12 })}.${signature}` }),
    () => ({ Authorization: `Bearer ${token.slice(0, -3)}abc` }),
    () => ({ Authorization: `Basic ${Buffer.from(`${r.text(20)}:${r.text(20)}`).toString("base64")}` }),
    () => ({ Authorization: "Basic !!!!" }),
    () => ({ Authorization: r.text(r.int(200)) }),
    () => ({ Authorization: `Bearer ${"a.".repeat(r.int(2_000))}` }),
  ])();
}

/** One hostile request; `tokens` holds a valid token per valid repository name. */
export function hostileRequest(r: Random, tokens: ReadonlyMap<string, string>): HostileRequest {
  const valid = [...tokens.keys()];
  const name = names(r, valid);
  const token = tokens.get(name) ?? (tokens.get(r.pick(valid)) as string);
  const auth = authorization(r, token);
  const form = r.pick([
    () => ({ kind: "manifest-get", method: r.pick(["GET", "HEAD"]), path: `/v2/${name}/manifests/${reference(r)}` }),
    () => ({
      kind: "manifest-put",
      method: "PUT",
      path: `/v2/${name}/manifests/${reference(r)}`,
      headers: { "Content-Type": r.int(2) === 0 ? manifestTypes[0] : r.pick(manifestTypes) },
      body: manifestBody(r),
    }),
    () => ({
      kind: "blob-get",
      method: r.pick(["GET", "HEAD", "DELETE"]),
      path: `/v2/${name}/blobs/${digest(r)}`,
      headers: {
        Range: r.pick(["bytes=0-", "bytes=-5", "bytes=9-1", "bytes=abc", `bytes=0-${r.int(1e12)}`, "bytes=0-1,3-4"]),
      },
    }),
    () => ({
      kind: "upload-start",
      method: "POST",
      path: `/v2/${name}/blobs/uploads/${r.pick(["", `?digest=${digest(r)}`, `?mount=${digest(r)}&from=${names(r, valid)}`, "?digest=", `?mount=${r.text(10)}`])}`,
      body: r.pick([undefined, r.bytes(r.int(70_000))]),
    }),
    () => ({
      kind: "upload-chunk",
      method: r.pick(["PATCH", "PUT", "GET", "DELETE"]),
      path: `/v2/${name}/blobs/uploads/${r.pick([r.text(36, "0123456789abcdef-"), "00000000-0000-0000-0000-000000000000", r.text(r.int(100)), ".."])}${r.pick(["", `?digest=${digest(r)}`])}`,
      headers: { "Content-Range": r.pick(["0-9", "5-1", "abc", `0-${r.int(1e15)}`, "-1--2", ""]) },
      body: r.bytes(r.int(30_000)),
    }),
    () => ({
      kind: "tags",
      method: "GET",
      path: `/v2/${name}/tags/list?${r.pick(["n=-1", "n=abc", `n=${r.int(1e9)}`, `last=${r.text(200)}`, "n=0", "n=1&last=%ff"])}`,
    }),
    () => ({
      kind: "referrers",
      method: "GET",
      path: `/v2/${name}/referrers/${digest(r)}?artifactType=${r.text(r.int(50))}`,
    }),
    () => ({
      kind: "catalog",
      method: "GET",
      path: `/v2/_catalog?${r.pick(["n=-5", "n=99999999999", "last=%00", "n=2&last=zzz"])}`,
    }),
    () => ({
      kind: "odd-path",
      method: r.pick(["GET", "POST", "OPTIONS", "PROPFIND", "TRACE", "CONNECT"]),
      path: r.pick([
        "/v2",
        "/v2/",
        "/v2//",
        "/v2/%",
        "/v2/%zz",
        "/../../etc/passwd",
        `/${r.text(r.int(3000))}`,
        "/v2/a/b/c/d/e/f/g/manifests",
        "/token/../v2/",
      ]),
    }),
    () => ({
      kind: "token",
      method: r.pick(["GET", "POST"]),
      path: `/token?${r.pick(["", `service=${r.text(20)}`, `scope=${r.text(80)}`, "scope=repository:a:b:c:d", `account=${r.text(10)}`, "offline_token=maybe", `scope=${"repository:x:pull&scope=".repeat(200)}x`])}`,
      headers: {
        "Content-Type": r.pick(["application/x-www-form-urlencoded", "application/json", "multipart/form-data"]),
      },
      body: Buffer.from(
        r.pick([
          "grant_type=password&username=admin&password=x",
          "grant_type=refresh_token&refresh_token=abc",
          `grant_type=${r.text(10)}`,
          r.text(r.int(2000)),
          "%%%%",
        ]),
      ),
    }),
    () => ({
      kind: "huge-header",
      method: "GET",
      path: "/v2/",
      headers: { "X-Fill": "a".repeat(16_000 + r.int(80_000)) },
    }),
    () => ({
      kind: "many-headers",
      method: "GET",
      path: `/v2/${name}/tags/list`,
      headers: Object.fromEntries(Array.from({ length: 200 + r.int(2_000) }, (_, i) => [`x-h${i}`, "1"])),
    }),
  ])() as Omit<HostileRequest, "headers"> & { headers?: Record<string, string> };
  return { ...form, headers: { ...auth, ...form.headers } };
}

/** Requests no HTTP client would send: length lies, chunked bodies cut short, broken request lines. */
export function rawHostileRequest(r: Random, token: string, name: string): HostileRequest {
  const auth = `Authorization: Bearer ${token}\r\n`;
  const raw = r.pick([
    () =>
      `PUT /v2/${name}/manifests/x HTTP/1.1\r\nHost: h\r\n${auth}Content-Length: ${1000 + r.int(1e6)}\r\n\r\n{"schema`,
    () =>
      `PATCH /v2/${name}/blobs/uploads/${r.text(36, "0123456789abcdef-")} HTTP/1.1\r\nHost: h\r\n${auth}Transfer-Encoding: chunked\r\n\r\n10\r\nabc`,
    () =>
      `POST /v2/${name}/blobs/uploads/?digest=sha256:${hex("z")} HTTP/1.1\r\nHost: h\r\n${auth}Content-Length: 10\r\nContent-Length: 20\r\n\r\n0123456789`,
    () => `POST /v2/${name}/blobs/uploads/ HTTP/1.1\r\nHost: h\r\n${auth}Content-Length: -1\r\n\r\n`,
    () => `GET /v2/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`,
    () => `GET /v2/ HTTP/9.9\r\n\r\n`,
    () => `${r.text(r.int(200))}\r\n\r\n`,
    () => `GET /v2/\x00 HTTP/1.1\r\nHost: h\r\n\r\n`,
    () => `GET /v2/ HTTP/1.1\r\nHost: h\r\nX: ${"\x7f".repeat(10)}\r\n\r\n`,
    () => `PUT /v2/${name}/manifests/x HTTP/1.1\r\nHost: h\r\n${auth}Transfer-Encoding: chunked\r\n\r\nzz\r\n`,
  ])();
  return { kind: "raw", method: "RAW", path: "", headers: {}, raw: Buffer.from(raw, "latin1") };
}
