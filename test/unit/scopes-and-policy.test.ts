import { describe, expect, it } from "vitest";
import { createPolicy, defaultRules } from "../../src/auth/authz/policy.js";
import { globToRegExp } from "../../src/glob.js";
import { parseScopes } from "../../src/auth/token/scope.js";
import { libtrustKeyId } from "../../src/auth/token/key-id.js";
import { createPublicKey } from "node:crypto";

describe("scope strings", () => {
  it.each([
    [["repository:team/app:pull,push"], [{ type: "repository", name: "team/app", actions: ["pull", "push"] }]],
    [["repository:localhost:5000/app:pull"], [{ type: "repository", name: "localhost:5000/app", actions: ["pull"] }]],
    [
      ["repository:a:pull repository:b:push"],
      [
        { type: "repository", name: "a", actions: ["pull"] },
        { type: "repository", name: "b", actions: ["push"] },
      ],
    ],
    [["repository:a:pull", "repository:a:push"], [{ type: "repository", name: "a", actions: ["pull", "push"] }]],
    [["repository:a:*"], [{ type: "repository", name: "a", actions: ["pull", "push", "delete"] }]],
    [["registry:catalog:*"], [{ type: "registry", name: "catalog", actions: ["*"] }]],
    [["repository:a:fly", "plugin:a:pull", "repository:a", "", "repository::pull"], []],
  ])("parses %j", (values, expected) => {
    expect(parseScopes(values)).toEqual(expected);
  });
});

describe("policies", () => {
  const policy = createPolicy([
    { account: "ci-*", clientIp: "10.0.0.0/8", repository: "ci/*", actions: ["pull", "push"] },
    { account: "*", repository: "users/${account}/*", actions: ["*"] },
    { anonymous: true, repository: "public/*", actions: ["pull"] },
    { group: "dev", repository: "team/*", actions: ["pull", "push"] },
  ]);
  const user = (account: string | undefined, groups: string[] = [], clientIp = "127.0.0.1") => ({
    account,
    groups,
    clientIp,
  });

  it.each([
    [user("ci-1", [], "10.1.2.3"), "ci/cache", ["pull", "push"], 0],
    [user("ci-1", [], "192.0.2.1"), "ci/cache", [], undefined],
    [user("alice"), "users/alice/tool", ["pull", "push", "delete"], 1],
    [user("alice"), "users/bob/tool", [], undefined],
    [user("a*"), "users/anything/tool", [], undefined],
    [user(undefined), "public/base", ["pull"], 2],
    [user("alice"), "public/base", [], undefined],
    [user(undefined), "team/app", [], undefined],
    [user("bob", ["dev"]), "team/app", ["pull", "push"], 3],
  ])("decides for %j on %s", (subject, repository, actions, ruleIndex) => {
    const decision = policy.decide(subject, repository);
    expect(decision.actions).toEqual(actions);
    expect(decision.ruleIndex).toBe(ruleIndex);
  });

  it("lets signed-in users pull and push and admins delete by default, and anonymous callers nothing", () => {
    const defaults = createPolicy(defaultRules("admins"));
    expect(defaults.decide(user("alice"), "x/y").actions).toEqual(["pull", "push"]);
    expect(defaults.decide(user("root", ["admins"]), "x/y").actions).toEqual(["pull", "push", "delete"]);
    expect(defaults.decide(user(undefined), "x/y").actions).toEqual([]);
  });

  it("treats only * and ? as wildcards in globs", () => {
    expect(globToRegExp("team/*").test("team/a/b")).toBe(true);
    expect(globToRegExp("a.b").test("axb")).toBe(false);
    expect(globToRegExp("v?").test("v1")).toBe(true);
  });
});

describe("libtrust key IDs", () => {
  it("are 12 groups of 4 base32 characters", () => {
    const key = createPublicKey(
      "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\nq9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n-----END PUBLIC KEY-----\n",
    );
    expect(libtrustKeyId(key)).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
  });
});
