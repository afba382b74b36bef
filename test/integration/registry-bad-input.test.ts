import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listFiles, startRegistryUnderTest, type RegistryUnderTest } from "../support/registry-under-test.js";
import { pushImage, sha256 } from "../support/registry-requests.js";

let registry: RegistryUnderTest;
let imageManifest: string;
beforeAll(async () => {
  registry = await startRegistryUnderTest();
  imageManifest = (await pushImage(registry.url, "bad/app", "v1")).content;
});
afterAll(async () => {
  await registry.stop();
});

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Sends the path exactly as written: fetch would normalise `..` and `%2e%2e` away before they arrive. */
function send(
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const { hostname, port } = new URL(registry.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
    });
    req.on("error", reject);
    req.end(body);
  });
}

const ociManifest = "application/vnd.oci.image.manifest.v1+json";

const cases: {
  what: string;
  method: string;
  path: () => string;
  body?: () => string | Buffer;
  headers?: Record<string, string>;
  status: number;
  code: string;
}[] = [
  {
    what: "an invalid repository name",
    method: "PUT",
    path: () => "/v2/Bad_Name/manifests/v1",
    body: () => imageManifest,
    headers: { "Content-Type": ociManifest },
    status: 400,
    code: "NAME_INVALID",
  },
  {
    what: "an invalid tag",
    method: "PUT",
    path: () => "/v2/bad/app/manifests/-nope",
    body: () => imageManifest,
    headers: { "Content-Type": ociManifest },
    status: 400,
    code: "MANIFEST_INVALID",
  },
  // The OCI conformance suite pulls `.INVALID_MANIFEST_NAME` and expects 404, as distribution answers.
  ...["GET", "DELETE"].map((method) => ({
    what: `${method} of a manifest by an invalid tag`,
    method,
    path: () => "/v2/bad/app/manifests/.INVALID_MANIFEST_NAME",
    status: 404,
    code: "MANIFEST_UNKNOWN",
  })),
  {
    what: "an invalid digest",
    method: "GET",
    path: () => "/v2/bad/app/blobs/sha256:totallywrong",
    status: 400,
    code: "DIGEST_INVALID",
  },
  {
    what: "an invalid digest on upload",
    method: "POST",
    path: () => "/v2/bad/app/blobs/uploads/?digest=sha256:totallywrong",
    body: () => "data",
    status: 400,
    code: "DIGEST_INVALID",
  },
  {
    what: "`..` in a name",
    method: "PUT",
    path: () => "/v2/bad/../../etc/manifests/v1",
    body: () => imageManifest,
    headers: { "Content-Type": ociManifest },
    status: 400,
    code: "NAME_INVALID",
  },
  {
    what: "percent-encoded traversal in a name",
    method: "POST",
    path: () => "/v2/bad/%2e%2e/%2e%2e/x/blobs/uploads/",
    status: 400,
    code: "NAME_INVALID",
  },
  {
    what: "percent-encoded slashes in a name",
    method: "GET",
    path: () => "/v2/bad%2f..%2f..%2fx/tags/list",
    status: 400,
    code: "NAME_INVALID",
  },
  {
    what: "malformed manifest JSON",
    method: "PUT",
    path: () => "/v2/bad/app/manifests/broken",
    body: () => "{not json",
    headers: { "Content-Type": ociManifest },
    status: 400,
    code: "MANIFEST_INVALID",
  },
  {
    what: "a manifest with an unknown media type",
    method: "PUT",
    path: () => "/v2/bad/app/manifests/odd",
    body: () => imageManifest.replace(ociManifest, "application/x-unknown"),
    headers: { "Content-Type": "application/x-unknown" },
    status: 400,
    code: "MANIFEST_INVALID",
  },
  {
    what: "a Content-Type that disagrees with the manifest",
    method: "PUT",
    path: () => "/v2/bad/app/manifests/odd2",
    body: () => imageManifest,
    headers: { "Content-Type": "application/vnd.oci.image.index.v1+json" },
    status: 400,
    code: "MANIFEST_INVALID",
  },
  {
    what: "an oversized manifest",
    method: "PUT",
    path: () => "/v2/bad/app/manifests/huge",
    body: () => Buffer.alloc(4 * 1024 * 1024 + 1, 0x20),
    headers: { "Content-Type": ociManifest },
    status: 413,
    code: "MANIFEST_INVALID",
  },
  {
    what: "a monolithic upload whose body does not match its digest",
    method: "POST",
    path: () => `/v2/bad/app/blobs/uploads/?digest=${sha256("claimed")}`,
    body: () => "actual",
    status: 400,
    code: "DIGEST_INVALID",
  },
  {
    what: "a route that does not exist",
    method: "GET",
    path: () => "/v2/bad/app/nothing-here",
    status: 404,
    code: "UNSUPPORTED",
  },
  {
    what: "a method the route does not take",
    method: "POST",
    path: () => "/v2/bad/app/tags/list",
    status: 405,
    code: "UNSUPPORTED",
  },
];

describe("bad input", () => {
  it.each(cases)(
    "answers $what with $code and writes nothing",
    async ({ method, path, body, headers, status, code }) => {
      const before = await listFiles(registry.root);
      const res = await send(method, path(), body?.(), headers);
      expect(res.status).toBe(status);
      expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
      const json = JSON.parse(res.body) as { errors: { code: string; message: string }[] };
      expect(json.errors[0]?.code).toBe(code);
      expect(json.errors[0]?.message).toBeTruthy();
      expect(await listFiles(registry.root)).toEqual(before);
    },
  );

  it("answers HEAD of a manifest by an invalid tag with 404, as GET", async () => {
    const res = await send("HEAD", "/v2/bad/app/manifests/.INVALID_MANIFEST_NAME");
    expect(res.status).toBe(404);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
  });

  it("answers a Content-Range that does not match the body with 416 and writes nothing to the upload", async () => {
    const started = await send("POST", "/v2/bad/app/blobs/uploads/");
    const location = started.headers.location as string;
    const before = await listFiles(registry.root);
    const res = await send("PATCH", location, "12345", {
      "Content-Range": "0-9",
      "Content-Type": "application/octet-stream",
    });
    expect(res.status).toBe(416);
    expect(JSON.parse(res.body).errors[0].code).toBe("BLOB_UPLOAD_INVALID");
    expect(await listFiles(registry.root)).toEqual(before);
    const status = await send("GET", location);
    expect(status.headers.range).toBe("0-0");
  });
});
