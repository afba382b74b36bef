import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import { createOrigins, describeOrigin } from "../../src/mirror/origin.js";
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
    ["a group of a mirror that is not configured", { upstreams, mirrors: [{ prefix: "hub/", upstream: "hub" }], groups: [{ prefix: "all/", mirror: "quay/" }] }, 'groups.0.mirror: no entry of mirrors has the prefix "quay/" (mirrored: "hub/")'],
    ["a group on a mirror's prefix", { upstreams, mirrors: [{ prefix: "hub/", upstream: "hub" }], groups: [{ prefix: "hub/", mirror: "hub/" }] }, 'groups.0.prefix: prefix "hub/" is a mirror\'s'],
    ["the same group prefix twice", { upstreams, mirrors: [{ prefix: "hub/", upstream: "hub" }], groups: [{ prefix: "all/", mirror: "hub/" }, { prefix: "all/", mirror: "hub/" }] }, 'groups.1.prefix: prefix "all/" is already a group'],
    ["a group key it does not know", { upstreams, mirrors: [{ prefix: "hub/", upstream: "hub" }], groups: [{ prefix: "all/", mirror: "hub/", mode: "group" }] }, "groups.0: Unrecognized key"],
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

describe("which repositories are in a group", () => {
  const mirrors = [
    { prefix: "hub/", upstream: "hub", tagTtlSeconds: 300 },
    { prefix: "hub/team/", upstream: "team", tagTtlSeconds: 0 },
  ];
  const routes = createMirrorRoutes(mirrors, [{ prefix: "all/", mirror: "hub/" }]);

  it("takes a group of a mirror, with no groups by default", () => {
    const config = configSchema.parse({
      upstreams,
      mirrors: [{ prefix: "hub/", upstream: "hub" }],
      groups: [{ prefix: "all/", mirror: "hub/" }],
    });
    expect(config.groups).toEqual([{ prefix: "all/", mirror: "hub/" }]);
    expect(configSchema.parse({}).groups).toEqual([]);
  });

  // prettier-ignore
  it.each([
    ["all/library/alpine", "hub/library/alpine", "hub", "library/alpine"],
    ["all/team/app", "hub/team/app", "team", "app"],
  ])("stores %s as itself and reads what was not pushed from %s, of upstream %s as %s", (name, cacheName, upstream, remoteName) => {
    expect(routes.route(name)).toEqual({
      kind: "group",
      target: { name, cache: { name: cacheName, upstream, remoteName, tagTtlMs: upstream === "hub" ? 300_000 : 0 } },
    });
  });

  it("keeps the mirror itself a read-only mirror beside its group", () => {
    expect(routes.route("hub/library/alpine")?.kind).toBe("mirror");
    expect(routes.find("all/library/alpine")).toBeUndefined();
  });

  it("lets a longer mirror prefix inside a group's name space win over the group", () => {
    const nested = createMirrorRoutes(
      [
        { prefix: "hub/", upstream: "hub", tagTtlSeconds: 300 },
        { prefix: "all/quay/", upstream: "quay", tagTtlSeconds: 300 },
      ],
      [{ prefix: "all/", mirror: "hub/" }],
    );
    expect(nested.route("all/quay/app")).toEqual({
      kind: "mirror",
      target: { name: "all/quay/app", upstream: "quay", remoteName: "app", tagTtlMs: 300_000 },
    });
    expect(nested.route("all/app")?.kind).toBe("group");
  });

  it("falls through from a whole-name-space group to its mirror, never to itself", () => {
    const everything = createMirrorRoutes(mirrors, [{ prefix: "", mirror: "hub/" }]);
    expect(everything.route("app")).toEqual({
      kind: "group",
      target: { name: "app", cache: { name: "hub/app", upstream: "hub", remoteName: "app", tagTtlMs: 300_000 } },
    });
    expect(everything.route("hub/app")?.kind).toBe("mirror");
  });
});

describe("where a repository comes from, as ls and the console say it", () => {
  const originOf = createOrigins(
    configSchema.parse({
      upstreams,
      mirrors: [{ prefix: "hub/", upstream: "hub" }],
      groups: [{ prefix: "all/", mirror: "hub/" }],
    }),
  );

  // prettier-ignore
  it.each([
    ["hub/library/alpine", "cache of upstream hub (http://127.0.0.1:5001)"],
    ["all/team/app", "group: pushed here, else hub/team/app from upstream hub (http://127.0.0.1:5001)"],
  ])("describes %s as %s", (name, text) => {
    const origin = originOf(name);
    expect(origin && describeOrigin(origin)).toBe(text);
  });

  it("says nothing of a repository that is only pushed", () => {
    expect(originOf("team/app")).toBeUndefined();
  });
});
