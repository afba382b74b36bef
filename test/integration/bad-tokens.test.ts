import { createPrivateKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { decodeProtectedHeader, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthGatewayUnderTest, type AuthGatewayUnderTest } from "../support/auth-gateway-under-test.js";

let gw: AuthGatewayUnderTest;
let key: KeyObject;
let goodToken: string;
let header: ReturnType<typeof decodeProtectedHeader>;

beforeAll(async () => {
  gw = await startAuthGatewayUnderTest({ users: { alice: "alice-password" } });
  key = createPrivateKey(await readFile(join(gw.certsDir, "token-signing", "current.key")));
  goodToken = JSON.parse(
    (await gw.token("alice", "alice-password", ["repository:team/app:pull"])).body.toString(),
  ).token;
  header = decodeProtectedHeader(goodToken);
});
afterAll(async () => {
  await gw.stop();
});

const now = () => Math.floor(Date.now() / 1000);
const access = [{ type: "repository", name: "team/app", actions: ["pull"] }];

/** A token like the server's own, with the claims and header changed as asked, signed by `signer`. */
function forge(
  changes: { claims?: Record<string, unknown>; header?: Record<string, unknown>; signer?: KeyObject } = {},
) {
  const claims = {
    iss: "portcullis",
    sub: "alice",
    aud: "portcullis",
    iat: now(),
    nbf: now() - 5,
    exp: now() + 300,
    jti: "x",
    access,
    ...changes.claims,
  };
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", kid: header.kid, x5c: header.x5c, ...changes.header })
    .sign(changes.signer ?? key);
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

async function pull(token: string) {
  return gw.request("/v2/team/app/tags/list", { headers: { Authorization: `Bearer ${token}` } });
}

describe("tokens the gateway refuses", () => {
  it("accepts the token it issued, as a baseline", async () => {
    expect((await pull(goodToken)).status).toBe(404);
    expect((await pull(await forge())).status).toBe(404);
  });

  it.each<[string, () => Promise<string>]>([
    ["alg none", async () => `${b64({ alg: "none", typ: "JWT", kid: header.kid })}.${goodToken.split(".")[1]}.`],
    [
      "HS256 signed with the public key",
      async () => {
        const publicPem = (await import("node:crypto")).createPublicKey(key).export({ type: "spki", format: "pem" });
        return new SignJWT({ iss: "portcullis", sub: "alice", aud: "portcullis", exp: now() + 300, access })
          .setProtectedHeader({ alg: "HS256", kid: header.kid })
          .sign(Buffer.from(publicPem));
      },
    ],
    ["an expired token", () => forge({ claims: { iat: now() - 900, nbf: now() - 900, exp: now() - 600 } })],
    ["a token not yet valid", () => forge({ claims: { nbf: now() + 600, exp: now() + 900 } })],
    ["a token for another audience", () => forge({ claims: { aud: "another-registry" } })],
    ["a token from another issuer", () => forge({ claims: { iss: "someone-else" } })],
    [
      "a token whose access claim was tampered with",
      async () => {
        const [head, , signature] = goodToken.split(".");
        const payload = JSON.parse(Buffer.from(goodToken.split(".")[1] as string, "base64url").toString());
        payload.access = [{ type: "repository", name: "team/app", actions: ["pull", "push", "delete"] }];
        return `${head}.${b64(payload)}.${signature}`;
      },
    ],
    [
      "a token signed by a key with an unknown kid",
      () =>
        forge({
          header: { kid: "unknown-key-id" },
          signer: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey,
        }),
    ],
    [
      "a token signed by another key under our kid",
      () => forge({ signer: generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey }),
    ],
  ])("refuses %s with 401", async (_what, make) => {
    const res = await pull(await make());
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain('error="invalid_token"');
    expect(JSON.parse(res.body.toString()).errors[0].code).toBe("UNAUTHORIZED");
  });
});
