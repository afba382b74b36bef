import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import { createMirrorRoutes } from "../../src/mirror/routes.js";

const upstreams = { hub: { url: "http://127.0.0.1:5001" } };

function issues(config: Record<string, unknown>): string[] {
  const result = configSchema.safeParse(config);
  return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
}

describe("mirrors in the configuration", () => {
  it("takes a mirror of a named upstream with a five-minute tag TTL by default", () => {
    const config = configSchema.parse({ upstreams, mirrors: [{ prefix: "hub/", upstream: "hub" }] });
    expect(config.mirrors).toEqual([{ prefix: "hub/", upstream: "hub", tagTtlSeconds: 300 }]);
  });

  // prettier-ignore
  it.each([
    ["an upstream that is not in upstreams", { upstreams, mirrors: [{ prefix: "hub/", upstream: "quay" }] }, 'mirrors.0.upstream: no upstream "quay" in upstreams (defined: hub)'],
    ["a prefix without its trailing slash", { upstreams, mirrors: [{ prefix: "hub", upstream: "hub" }] }, "mirrors.0.prefix: expected a repository path ending in \"/\""],
    ["a prefix that is not a repository path", { upstreams, mirrors: [{ prefix: "Hub/", upstream: "hub" }] }, "mirrors.0.prefix: expected"],
    ["the same prefix twice", { upstreams, mirrors: [{ prefix: "", upstream: "hub" }, { prefix: "", upstream: "hub" }] }, 'mirrors.1.prefix: prefix "" is already mirrored'],
    ["a key it does not know", { upstreams, mirrors: [{ prefix: "hub/", upstream: "hub", ttl: 5 }] }, "mirrors.0: Unrecognized key"],
    ["mirrors beside upstream", { upstreams, upstream: "hub", mirrors: [{ prefix: "hub/", upstream: "hub" }] }, "mirrors: mirrors are cached in the built-in registry"],
  ])("refuses %s, naming the key", (_what, config, expected) => {
    expect(issues(config).join("\n")).toContain(expected);
  });
});

describe("which repositories are mirrored", () => {
  const routes = createMirrorRoutes([
    { prefix: "", upstream: "everything", tagTtlSeconds: 60 },
    { prefix: "hub/", upstream: "hub", tagTtlSeconds: 300 },
    { prefix: "hub/team/", upstream: "team", tagTtlSeconds: 0 },
  ]);

  // prettier-ignore
  it.each([
    ["hub/library/alpine", "hub", "library/alpine", 300_000],
    ["hub/team/app", "team", "app", 0],
    ["library/alpine", "everything", "library/alpine", 60_000],
    ["hubble/app", "everything", "hubble/app", 60_000],
  ])("serves %s from upstream %s as %s, the longest prefix deciding", (name, upstream, remoteName, tagTtlMs) => {
    expect(routes.find(name)).toEqual({ name, upstream, remoteName, tagTtlMs });
  });

  it("mirrors nothing under a prefix that is not configured", () => {
    expect(
      createMirrorRoutes([{ prefix: "hub/", upstream: "hub", tagTtlSeconds: 300 }]).find("team/app"),
    ).toBeUndefined();
  });
});
