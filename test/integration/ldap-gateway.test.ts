import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthGatewayUnderTest, type AuthGatewayUnderTest } from "../support/auth-gateway-under-test.js";
import { startSlapd, type Slapd } from "../support/slapd.js";
import { decodeJwt } from "jose";

let slapd: Slapd;
let gw: AuthGatewayUnderTest;

beforeAll(async () => {
  slapd = await startSlapd();
  gw = await startAuthGatewayUnderTest({
    users: { local: "local-password" },
    env: { LDAP_BIND: slapd.servicePassword },
    settings: {
      auth: {
        ldap: {
          url: slapd.url,
          bindDn: slapd.serviceDn,
          bindPasswordEnv: "LDAP_BIND",
          userBase: slapd.peopleDn,
          groupAttribute: "memberOf",
          timeoutMs: 1000,
        },
      },
      policies: [
        { group: "admins", repository: "*", actions: ["*"] },
        { group: "developers", repository: "team/*", actions: ["pull", "push"] },
        { account: "local", repository: "*", actions: ["pull"] },
      ],
    },
  });
});
afterAll(async () => {
  await gw?.stop();
  await slapd?.stop();
});

const tokenBody = (res: { body: Buffer }) => JSON.parse(res.body.toString()) as Record<string, string>;

describe("LDAP users at the token endpoint", () => {
  it("gives an LDAP user a token whose access follows their LDAP groups", async () => {
    const alice = slapd.users.alice!;
    const res = await gw.token("alice", alice.password, [
      "repository:team/app:pull,push,delete",
      "repository:ops/db:delete",
    ]);
    expect(res.status).toBe(200);
    expect(decodeJwt(tokenBody(res).token as string).access).toEqual([
      { type: "repository", name: "team/app", actions: ["pull", "push", "delete"] },
      { type: "repository", name: "ops/db", actions: ["delete"] },
    ]);
    const bob = await gw.token("bob", slapd.users.bob!.password, ["repository:team/app:pull,push,delete"]);
    expect(decodeJwt(tokenBody(bob).token as string).access).toEqual([
      { type: "repository", name: "team/app", actions: ["pull", "push"] },
    ]);
  });

  it("signs a user in under the directory's spelling of their name, however it was typed", async () => {
    const res = await gw.token("ALICE", slapd.users.alice!.password, []);
    expect(res.status).toBe(200);
    expect(decodeJwt(tokenBody(res).token as string).sub).toBe("alice");
  });

  it("refuses an LDAP filter injection as a user name like any bad credential", async () => {
    const res = await gw.token("*)(uid=*))(|(uid=*", slapd.users.alice!.password, []);
    expect(res.status).toBe(401);
    expect(tokenBody(res)).toEqual({ error: "invalid_grant", error_description: "invalid username or password" });
  });

  it("answers 503 for LDAP users while the directory is down, and keeps serving htpasswd users", async () => {
    const basic = { Authorization: `Basic ${Buffer.from(`bob:${slapd.users.bob!.password}`).toString("base64")}` };
    const login = await gw.request("/token?service=portcullis&offline_token=true", { headers: basic });
    const refreshToken = tokenBody(login).refresh_token as string;
    await slapd.stop();
    const refreshed = await gw.request("/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: refreshToken,
        service: "portcullis",
      }).toString(),
    });
    expect(refreshed.status).toBe(503);
    expect(tokenBody(refreshed).error).toBe("temporarily_unavailable");
    const ldapUser = await gw.token("carol", slapd.users.carol!.password, []);
    expect(ldapUser.status).toBe(503);
    expect(tokenBody(ldapUser).error).toBe("temporarily_unavailable");
    expect(ldapUser.headers["retry-after"]).toBeDefined();
    const local = await gw.token("local", "local-password", ["repository:team/app:pull"]);
    expect(local.status).toBe(200);
  });
});
