import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthGatewayUnderTest, type AuthGatewayUnderTest } from "../support/auth-gateway-under-test.js";

describe("the web console in front of an upstream registry", () => {
  let gateway: AuthGatewayUnderTest;

  beforeAll(async () => {
    gateway = await startAuthGatewayUnderTest({
      users: { alice: "alice-upstream-pw" },
      settings: { upstream: "https://127.0.0.1:9" },
    });
  });
  afterAll(async () => {
    await gateway?.stop();
  });

  it("signs in, then says the repository pages need the built-in registry", async () => {
    const signIn = await gateway.request("/sign-in", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "username=alice&password=alice-upstream-pw",
    });
    expect(signIn.status).toBe(303);
    const setCookie = String(signIn.headers["set-cookie"]);
    expect(setCookie).toMatch(/HttpOnly; Secure; SameSite=Strict/);
    const cookie = setCookie.split(";")[0] as string;
    const home = await gateway.request("/", { headers: { Cookie: cookie } });
    expect(home.status).toBe(501);
    expect(home.body.toString()).toContain("needs the built-in registry");
  });
});
