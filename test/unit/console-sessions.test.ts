import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { escapeHtml, html } from "../../src/gateway/console/html.js";
import { createSessions } from "../../src/gateway/console/sessions.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

describe("console sessions", () => {
  let dir: TempDir;
  const key = randomBytes(32);
  let clock = 1_000_000;
  // Two server processes: the same key and the same sign-out directory, nothing in memory shared.
  const processes = () => {
    const deps = { key, revokedDir: join(dir.path, "signed-out"), lifetimeMs: 60_000, now: () => clock };
    return [createSessions(deps), createSessions(deps)] as const;
  };

  beforeAll(async () => {
    dir = await makeTempDir("console-sessions-");
  });
  afterAll(async () => {
    await dir.stop();
  });

  it("honours a cookie made by another process holding the same key", () => {
    const [first, second] = processes();
    const { cookie } = first.issue("alice");
    expect(second.read(cookie)?.user).toBe("alice");
  });

  it("refuses a cookie whose user was changed, and one signed with another key", () => {
    const [first] = processes();
    const { cookie } = first.issue("bob");
    const [id, , expiry, mac] = cookie.split(".");
    expect(first.read(`${id}.${Buffer.from("alice").toString("base64url")}.${expiry}.${mac}`)).toBeUndefined();
    const other = createSessions({ key: randomBytes(32), revokedDir: dir.path, lifetimeMs: 60_000 });
    expect(other.read(cookie)).toBeUndefined();
  });

  it("refuses a cookie after it expires", () => {
    const [first] = processes();
    const { cookie } = first.issue("alice");
    clock += 60_001;
    expect(first.read(cookie)).toBeUndefined();
  });

  it("refuses a signed-out session on every process", async () => {
    const [first, second] = processes();
    const { cookie, session } = first.issue("alice");
    await second.revoke(session);
    expect(first.read(cookie)).toBeUndefined();
  });

  it("binds the form token to its session", () => {
    const [first, second] = processes();
    const a = first.issue("alice").session;
    const b = first.issue("bob").session;
    expect(second.checkCsrf(a, first.csrfToken(a))).toBe(true);
    expect(second.checkCsrf(a, first.csrfToken(b))).toBe(false);
    expect(second.checkCsrf(a, null)).toBe(false);
  });
});

describe("console HTML", () => {
  it("escapes every interpolated value, in text and in attributes", () => {
    const name = `<script>alert("x")</script>' &`;
    expect(html`<a title="${name}">${name}</a>`.safe).toBe(`<a title="${escapeHtml(name)}">${escapeHtml(name)}</a>`);
    expect(escapeHtml(name)).not.toMatch(/[<>"']/);
  });
});
