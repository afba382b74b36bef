import { X509Certificate } from "node:crypto";
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthGatewayUnderTest, type AuthGatewayUnderTest } from "../support/auth-gateway-under-test.js";
import { hashPassword, readHtpasswd, writeHtpasswd } from "../../src/auth/authn/htpasswd-file.js";
import { join } from "node:path";

let gw: AuthGatewayUnderTest;
beforeAll(async () => {
  gw = await startAuthGatewayUnderTest({
    users: { alice: "alice-password", bob: "bob-password", admin: "admin-password" },
    settings: { auth: { groups: { admins: ["admin"] } } },
  });
});
afterAll(async () => {
  await gw.stop();
});

const basic = (user: string, password: string) => ({
  Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`,
});
const json = (body: Buffer) => JSON.parse(body.toString()) as Record<string, unknown>;
const form = (fields: Record<string, string>) => ({
  method: "POST",
  headers: { "Content-Type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(fields).toString(),
});

describe("the /v2/ challenge", () => {
  it("answers an unauthenticated GET /v2/ with 401 and a Bearer challenge naming the realm and service", async () => {
    const res = await gw.request("/v2/");
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe(`Bearer realm="${gw.url}/token",service="portcullis"`);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    expect((json(res.body).errors as { code: string }[])[0]?.code).toBe("UNAUTHORIZED");
  });

  it("adds the scope a repository request needs", async () => {
    const res = await gw.request("/v2/team/app/blobs/uploads/", { method: "POST" });
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe(
      `Bearer realm="${gw.url}/token",service="portcullis",scope="repository:team/app:pull,push"`,
    );
  });

  it("says insufficient_scope when the token lacks the action", async () => {
    const token = json((await gw.token("alice", "alice-password", ["repository:team/app:pull"])).body).token as string;
    const res = await gw.request("/v2/team/app/blobs/uploads/", {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain(
      'scope="repository:team/app:pull,push",error="insufficient_scope"',
    );
  });
});

describe("requests refused before any token is looked at", () => {
  it("refuses a percent-encoded name that a policy could not see, even with a token naming it", async () => {
    const token = json((await gw.token("alice", "alice-password", ["repository:prod%2Fapp:pull,push"])).body)
      .token as string;
    const res = await gw.request("/v2/prod%2Fapp/manifests/latest", { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(400);
    expect((json(res.body).errors as { code: string }[])[0]?.code).toBe("NAME_INVALID");
  });

  it("answers a path the registry API does not have with 404, and does not pass it on", async () => {
    const token = json((await gw.token("alice", "alice-password", [])).body).token as string;
    const res = await gw.request("/v2/_zot/ext/search", { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(404);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
    expect((json(res.body).errors as { code: string }[])[0]?.code).toBe("UNSUPPORTED");
  });
});

describe("GET /token", () => {
  it("issues a token with every claim of the spec, x5c and an RFC 7638 kid", async () => {
    const res = await gw.token("alice", "alice-password", ["repository:team/app:pull,push"]);
    expect(res.status).toBe(200);
    expect(res.headers["cache-control"]).toBe("no-store");
    const body = json(res.body);
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBeGreaterThanOrEqual(60);
    expect(new Date(body.issued_at as string).toISOString()).toBe(body.issued_at);
    expect(body.refresh_token).toBeUndefined();

    const claims = decodeJwt(body.token as string);
    expect(claims).toMatchObject({ iss: "portcullis", sub: "alice", aud: "portcullis" });
    expect(claims.access).toEqual([{ type: "repository", name: "team/app", actions: ["pull", "push"] }]);
    expect(typeof claims.jti).toBe("string");
    expect(claims.nbf).toBeLessThan(claims.iat as number);
    expect(claims.exp).toBe((claims.iat as number) + 300);

    const header = decodeProtectedHeader(body.token as string);
    expect(header.alg).toBe("ES256");
    const cert = new X509Certificate(Buffer.from((header.x5c as string[])[0] as string, "base64"));
    expect(cert.verify(new X509Certificate(gw.caPem).publicKey)).toBe(true);
    expect(header.kid).toBe(await calculateJwkThumbprint(await exportJWK(cert.publicKey)));
  });

  it("answers docker login (no scope, offline_token) with an empty access list and a refresh token", async () => {
    const res = await gw.request("/token?account=alice&client_id=docker&offline_token=true&service=portcullis", {
      headers: basic("alice", "alice-password"),
    });
    const body = json(res.body);
    expect(decodeJwt(body.token as string).access).toEqual([]);
    expect(body.refresh_token).toMatch(/^pcr1\./);
  });

  it("drops asked-for actions the policy does not allow and still issues the token", async () => {
    const res = await gw.token("alice", "alice-password", [
      "repository:team/app:pull,push,delete",
      "repository:other:*",
    ]);
    expect(res.status).toBe(200);
    expect(decodeJwt(json(res.body).token as string).access).toEqual([
      { type: "repository", name: "team/app", actions: ["pull", "push"] },
      { type: "repository", name: "other", actions: ["pull", "push"] },
    ]);
    const admin = await gw.token("admin", "admin-password", ["repository:team/app:delete"]);
    expect(decodeJwt(json(admin.body).token as string).access).toEqual([
      { type: "repository", name: "team/app", actions: ["delete"] },
    ]);
  });

  it("reads names holding a host:port and drops unknown types and actions", async () => {
    const res = await gw.token("alice", "alice-password", [
      "repository:localhost:5000/app:pull,fly",
      "plugin:x:pull",
      "repository:bare",
    ]);
    expect(decodeJwt(json(res.body).token as string).access).toEqual([
      { type: "repository", name: "localhost:5000/app", actions: ["pull"] },
    ]);
  });

  it("refuses an account that differs from the Basic user with 400", async () => {
    const res = await gw.request("/token?account=bob&service=portcullis", {
      headers: basic("alice", "alice-password"),
    });
    expect(res.status).toBe(400);
    expect(json(res.body).error).toBe("invalid_request");
  });

  it("answers a wrong password and an unknown user with the same status and body", async () => {
    const wrong = await gw.token("alice", "not-her-password", []);
    const unknown = await gw.token("mallory", "whatever-password", []);
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(unknown.body.toString()).toBe(wrong.body.toString());
    expect(json(wrong.body)).toEqual({ error: "invalid_grant", error_description: "invalid username or password" });
  });

  it("refuses callers without credentials while anonymous access is off", async () => {
    const res = await gw.token(undefined, undefined, ["repository:team/app:pull"]);
    expect(res.status).toBe(401);
  });

  it("refuses another service's name", async () => {
    const res = await gw.request("/token?service=elsewhere", { headers: basic("alice", "alice-password") });
    expect(res.status).toBe(400);
  });
});

describe("POST /token", () => {
  it("takes the password grant, with a refresh token for access_type=offline", async () => {
    const res = await gw.request(
      "/token",
      form({
        grant_type: "password",
        username: "bob",
        password: "bob-password",
        service: "portcullis",
        client_id: "containerd-client",
        access_type: "offline",
        scope: "repository:team/app:pull repository:team/lib:pull",
      }),
    );
    expect(res.status).toBe(200);
    const body = json(res.body);
    expect(decodeJwt(body.access_token as string).access).toHaveLength(2);
    expect(body.refresh_token).toMatch(/^pcr1\./);
  });

  it("takes the refresh_token grant and hands back the same refresh token", async () => {
    const login = json(
      (
        await gw.request("/token?offline_token=true&service=portcullis&client_id=docker", {
          headers: basic("bob", "bob-password"),
        })
      ).body,
    );
    const refresh = login.refresh_token as string;
    const res = await gw.request(
      "/token",
      form({
        grant_type: "refresh_token",
        refresh_token: refresh,
        service: "portcullis",
        client_id: "docker",
        scope: "repository:team/app:pull,push",
      }),
    );
    expect(res.status).toBe(200);
    const body = json(res.body);
    expect(body.refresh_token).toBe(refresh);
    expect(decodeJwt(body.access_token as string)).toMatchObject({
      sub: "bob",
      access: [{ type: "repository", name: "team/app", actions: ["pull", "push"] }],
    });
    expect(gw.logs()).toContain('"grant":"refresh_token"');
  });

  it("refuses a refresh token after the user's password changed, and after the user is removed", async () => {
    const login = json(
      (await gw.request("/token?offline_token=true&service=portcullis", { headers: basic("alice", "alice-password") }))
        .body,
    );
    const refresh = login.refresh_token as string;
    const file = join(gw.certsDir, "htpasswd");
    const users = await readHtpasswd(file);
    users.set("alice", { user: "alice", hash: await hashPassword("alice-new-password") });
    await writeHtpasswd(file, users.values());
    const changed = await gw.request(
      "/token",
      form({ grant_type: "refresh_token", refresh_token: refresh, service: "portcullis" }),
    );
    expect(changed.status).toBe(401);
    expect(json(changed.body).error).toBe("invalid_grant");
    expect((await gw.token("alice", "alice-password", [])).status).toBe(401);
    expect((await gw.token("alice", "alice-new-password", [])).status).toBe(200);

    const again = json(
      (
        await gw.request("/token?offline_token=true&service=portcullis", {
          headers: basic("alice", "alice-new-password"),
        })
      ).body,
    );
    users.delete("alice");
    await writeHtpasswd(file, users.values());
    const removed = await gw.request(
      "/token",
      form({ grant_type: "refresh_token", refresh_token: again.refresh_token as string, service: "portcullis" }),
    );
    expect(removed.status).toBe(401);
  });

  it("refuses a forged refresh token", async () => {
    const forged = `pcr1.${Buffer.from(JSON.stringify({ sub: "admin", src: "htpasswd", cred: "", aud: "portcullis", iat: 0, exp: 9e9 })).toString("base64url")}.AAAA`;
    const res = await gw.request(
      "/token",
      form({ grant_type: "refresh_token", refresh_token: forged, service: "portcullis" }),
    );
    expect(res.status).toBe(401);
  });

  it.each([
    ["an unknown grant type", { grant_type: "client_credentials" }, 400, "unsupported_grant_type"],
    ["a missing grant type", { service: "portcullis" }, 400, "invalid_request"],
    [
      "a password grant with a wrong password",
      { grant_type: "password", username: "bob", password: "nope-nope" },
      401,
      "invalid_grant",
    ],
  ])("answers %s with an OAuth error, never a 500", async (_what, fields, status, error) => {
    const res = await gw.request("/token", form(fields as Record<string, string>));
    expect(res.status).toBe(status);
    expect(json(res.body).error).toBe(error);
  });
});

describe("the catalog", () => {
  it("lists only the repositories the caller may pull", async () => {
    const policyGw = await startAuthGatewayUnderTest({
      users: { carol: "carol-password", admin: "admin-password" },
      settings: {
        auth: { groups: { admins: ["admin"] } },
        policies: [
          { group: "admins", repository: "*", actions: ["*"] },
          { account: "carol", repository: "public/*", actions: ["pull"] },
        ],
      },
    });
    try {
      const push = json(
        (
          await policyGw.token("admin", "admin-password", [
            "repository:public/a:push,pull",
            "repository:private/b:push,pull",
          ])
        ).body,
      ).token as string;
      for (const name of ["public/a", "private/b"]) {
        const digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        const res = await policyGw.request(`/v2/${name}/blobs/uploads/?digest=${digest}`, {
          method: "POST",
          headers: { Authorization: `Bearer ${push}` },
          body: "{}",
        });
        expect(res.status).toBe(201);
      }
      const carol = json((await policyGw.token("carol", "carol-password", ["registry:catalog:*"])).body)
        .token as string;
      const res = await policyGw.request("/v2/_catalog", { headers: { Authorization: `Bearer ${carol}` } });
      expect(json(res.body)).toEqual({ repositories: ["public/a"] });
      const admin = json((await policyGw.token("admin", "admin-password", ["registry:catalog:*"])).body)
        .token as string;
      const all = await policyGw.request("/v2/_catalog?n=1", { headers: { Authorization: `Bearer ${admin}` } });
      expect(json(all.body)).toEqual({ repositories: ["private/b"] });
      expect(all.headers.link).toBe('</v2/_catalog?last=private%2Fb&n=1>; rel="next"');
    } finally {
      await policyGw.stop();
    }
  });
});
