import { describe, expect, it } from "vitest";
import { matchEndpoint } from "../../src/registry/api.js";

describe("the registry API table", () => {
  it.each([
    ["GET", "/v2/", "base", {}],
    ["GET", "/v2/_catalog", "catalog", {}],
    ["POST", "/v2/a/b/blobs/uploads/", "upload.start", { name: "a/b" }],
    ["PATCH", "/v2/a/b/blobs/uploads/123", "upload.chunk", { name: "a/b", id: "123" }],
    ["GET", "/v2/a/b/blobs/uploads/123", "upload.status", { name: "a/b", id: "123" }],
    ["HEAD", "/v2/a/blobs/sha256:abc", "blob.get", { name: "a", digest: "sha256:abc" }],
    ["DELETE", "/v2/a/blobs/sha256:abc", "blob.delete", { name: "a", digest: "sha256:abc" }],
    ["PUT", "/v2/a/b/c/manifests/v1", "manifest.put", { name: "a/b/c", reference: "v1" }],
    ["GET", "/v2/a/tags/list", "tags.list", { name: "a" }],
    ["GET", "/v2/a/referrers/sha256:abc", "referrers.list", { name: "a", digest: "sha256:abc" }],
  ])("routes %s %s to %s", (method, path, id, params) => {
    const match = matchEndpoint(method, path);
    expect(match.kind).toBe("found");
    if (match.kind === "found") {
      expect(match.endpoint.id).toBe(id);
      expect(match.params).toEqual(params);
    }
  });

  it("says which actions each endpoint needs", () => {
    const needs = (method: string, path: string) => {
      const match = matchEndpoint(method, path);
      return match.kind === "found" ? match.endpoint.needs : undefined;
    };
    expect(needs("GET", "/v2/a/manifests/v1")).toEqual(["pull"]);
    expect(needs("PUT", "/v2/a/manifests/v1")).toEqual(["pull", "push"]);
    expect(needs("DELETE", "/v2/a/manifests/v1")).toEqual(["delete"]);
    expect(needs("GET", "/v2/_catalog")).toBe("catalog");
  });

  it("tells a wrong method from an unknown path", () => {
    expect(matchEndpoint("POST", "/v2/a/tags/list")).toEqual({ kind: "wrong-method", allowed: ["GET"] });
    expect(matchEndpoint("GET", "/v2/a/nothing")).toEqual({ kind: "not-found" });
  });
});
