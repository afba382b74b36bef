import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/loader.js";
import { startAuthGatewayUnderTest, type AuthGatewayUnderTest } from "../support/auth-gateway-under-test.js";

const fixtures = join(import.meta.dirname, "../fixtures/policy-matrix");
const passwords: Record<string, string> = {
  admin: "admin-password",
  alice: "alice-password",
  bob: "bob-password",
  carol: "carol-password",
  "ci-builder": "ci-builder-password",
};
const actions = ["pull", "push", "delete"] as const;
const unknownBlob = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/**
 * The request that exercises each action, the scope a client asks for it (an upload needs pull and push,
 * as in distribution, and docker asks for both), and the statuses that mean it got past the gateway.
 */
type Probe = { scope: string; path: string; method: string; passed: number[] };
const probes: Record<(typeof actions)[number], (repository: string) => Probe> = {
  pull: (repository) => ({ scope: "pull", path: `/v2/${repository}/tags/list`, method: "GET", passed: [200, 404] }),
  push: (repository) => ({
    scope: "pull,push",
    path: `/v2/${repository}/blobs/uploads/`,
    method: "POST",
    passed: [202],
  }),
  delete: (repository) => ({
    scope: "delete",
    path: `/v2/${repository}/blobs/${unknownBlob}`,
    method: "DELETE",
    passed: [404],
  }),
};

interface Cell {
  caller: string;
  repository: string;
  action: (typeof actions)[number];
  allowed: boolean;
}

let gw: AuthGatewayUnderTest;
let expected: Cell[];

beforeAll(async () => {
  const config = await loadConfig({ file: join(fixtures, "portcullis.yaml"), env: {} });
  gw = await startAuthGatewayUnderTest({
    users: passwords,
    settings: { auth: config.auth, policies: config.policies },
  });
  const matrix = await readFile(join(fixtures, "expected-matrix.txt"), "utf8");
  expected = matrix
    .split("\n")
    .filter((line) => line.trim() && !line.startsWith("#"))
    .flatMap((line) => {
      const [caller, repository, ...answers] = line.trim().split(/\s+/);
      return actions.map((action, i) => ({
        caller: caller as string,
        repository: repository as string,
        action,
        allowed: answers[i] === "yes",
      }));
    });
});
afterAll(async () => {
  await gw?.stop();
});

describe("the policy matrix over real HTTP", () => {
  it("allows and denies exactly what expected-matrix.txt says, cell by cell", async () => {
    expect(expected.length).toBeGreaterThanOrEqual(90);
    const actual: Cell[] = [];
    for (const cell of expected) {
      const anonymous = cell.caller === "anonymous";
      const probe = probes[cell.action](cell.repository);
      const scope = `repository:${cell.repository}:${probe.scope}`;
      const tokenRes = await gw.token(anonymous ? undefined : cell.caller, passwords[cell.caller], [scope]);
      expect(tokenRes.status, `${cell.caller} gets a token`).toBe(200);
      const token = JSON.parse(tokenRes.body.toString()).token as string;
      const res = await gw.request(probe.path, { method: probe.method, headers: { Authorization: `Bearer ${token}` } });
      if (!probe.passed.includes(res.status))
        expect(res.status, `${cell.caller} ${cell.action} ${cell.repository}`).toBe(401);
      actual.push({ ...cell, allowed: probe.passed.includes(res.status) });
    }
    const render = (cells: Cell[]) =>
      cells.map((c) => `${c.caller} ${c.action} ${c.repository}: ${c.allowed ? "yes" : "no"}`);
    expect(render(actual)).toEqual(render(expected));
  });
});
