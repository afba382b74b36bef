import { appendFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialsRejected } from "../../src/auth/authn/authenticator.js";
import { createCredentialCheck } from "../../src/auth/authn/credential-check.js";
import { createHtpasswdAuthenticator } from "../../src/auth/authn/htpasswd.js";
import { loadSigningKeys, rotateSigningKey } from "../../src/auth/token/signing-keys.js";
import { createTokens, TokenInvalid } from "../../src/auth/token/tokens.js";
import { generateRsaKey, issueCertificate } from "../../src/pki/x509.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

let dir: TempDir;
beforeAll(async () => {
  dir = await makeTempDir("portcullis-auth-unit-");
});
afterAll(async () => {
  await dir.stop();
});

describe("the htpasswd authenticator", () => {
  it("keeps the last good users when a line it cannot accept is added, and reads the file again once fixed", async () => {
    const file = join(dir.path, "reload.htpasswd");
    await writeFile(file, `alice:${bcrypt.hashSync("alice-password", 5).replace("$2b$", "$2y$")}\n`);
    const users = createHtpasswdAuthenticator({ file, groups: {} });
    expect((await users.authenticate("alice", "alice-password"))?.name).toBe("alice");
    await new Promise((r) => setTimeout(r, 20));
    await appendFile(file, "bob:$apr1$abcdefgh$0123456789abcdefghijkl\n");
    expect((await users.authenticate("alice", "alice-password"))?.name).toBe("alice");
    expect(await users.authenticate("bob", "anything")).toBeUndefined();
  });

  it("knows its users from the first request on, when many arrive at once in a fresh process", async () => {
    const file = join(dir.path, "fresh.htpasswd");
    await writeFile(file, `alice:${bcrypt.hashSync("alice-password", 4).replace("$2b$", "$2y$")}\n`);
    const users = createHtpasswdAuthenticator({ file, groups: {} });
    const answers = await Promise.all(Array.from({ length: 8 }, () => users.authenticate("alice", "alice-password")));
    expect(answers.map((identity) => identity?.name)).toEqual(Array(8).fill("alice"));
  });

  it("reports the bcrypt cost most of its users have", async () => {
    const file = join(dir.path, "costs.htpasswd");
    const hash = (cost: number) => bcrypt.hashSync("x", cost).replace("$2b$", "$2y$");
    await writeFile(file, `a:${hash(5)}\nb:${hash(5)}\nc:${hash(6)}\n`);
    const users = createHtpasswdAuthenticator({ file, groups: {} });
    await users.lookup("a");
    expect(users.commonCost()).toBe(5);
  });
});

describe("the credential check", () => {
  it("compares an unknown user against a dummy hash of the cost the users have", async () => {
    const costs: number[] = [];
    const check = createCredentialCheck({
      authenticators: [],
      cacheSeconds: 60,
      dummyCost: () => {
        costs.push(5);
        return 5;
      },
    });
    await expect(check.verify("nobody", "whatever")).rejects.toBeInstanceOf(CredentialsRejected);
    expect(costs).toEqual([5]);
  });
});

/** A CA of a day, for signing-key certificates. */
function testCa(): { certPem: string; keyPem: string } {
  const key = generateRsaKey(2048);
  const certPem = issueCertificate({
    subject: { commonName: "t" },
    publicKeyPem: key.publicKeyPem,
    selfKeyPem: key.privateKeyPem,
    days: 1,
    kind: "ca",
  });
  return { certPem, keyPem: key.privateKeyPem };
}

describe("token-signing keys", () => {
  it("refuses a key and certificate that do not match on a reload, and replaces them at start", async () => {
    const ca = testCa();
    const options = { dir: join(dir.path, "keys"), algorithm: "ES256" as const, ca, tokenTtlSeconds: 300 };
    const first = await loadSigningKeys(options);
    const other = await loadSigningKeys({ ...options, dir: join(dir.path, "other-keys") });
    await writeFile(join(options.dir, "current.crt"), other.current.certificatePem);
    await expect(loadSigningKeys(options)).rejects.toThrow(/do not match/);
    const repaired = await loadSigningKeys({ ...options, repairMismatch: true });
    expect(repaired.current.kid).not.toBe(first.current.kid);
    expect(repaired.current.kid).not.toBe(other.current.kid);
  });

  it("reads the keys again before refusing a token signed by a key it has not loaded, at most once a second", async () => {
    const ca = testCa();
    const options = { dir: join(dir.path, "rotated-keys"), algorithm: "ES256" as const, ca, tokenTtlSeconds: 300 };
    const settings = { issuer: "portcullis", service: "portcullis", ttlSeconds: 300 };
    const stale = await loadSigningKeys(options);
    const rotated = await rotateSigningKey(options);
    // Another server process signs with the rotated key; this one still holds the keyring from before.
    const { token } = await createTokens(() => rotated, settings).issue("alice", []);
    let keyring = stale;
    let reloads = 0;
    const tokens = createTokens(() => keyring, {
      ...settings,
      reload: async () => {
        reloads++;
        keyring = await loadSigningKeys(options);
      },
    });
    expect((await tokens.verify(token)).subject).toBe("alice");
    expect(reloads).toBe(1);

    const forged = `${Buffer.from(JSON.stringify({ alg: "ES256", kid: "nobody" })).toString("base64url")}.e30.c2ln`;
    await Promise.all(
      [tokens.verify(forged), tokens.verify(forged)].map((p) => expect(p).rejects.toThrow(TokenInvalid)),
    );
    expect(reloads).toBe(1);
  });
});
