import { execFile } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditDir } from "../../src/audit/audit-log.js";
import { readRecords } from "../../src/audit/reader.js";
import { httpsRequest } from "../support/https-client.js";
import { cliPath, startPortcullisServe, type PortcullisServe } from "../support/portcullis-serve.js";
import { fetchToken } from "../support/registry-token.js";
import { removeTempDir } from "../support/temp-dir.js";

let serve: PortcullisServe;
beforeAll(async () => {
  serve = await startPortcullisServe();
});
afterAll(async () => {
  await serve?.stop();
  if (serve) await removeTempDir(serve.home);
});

const token = () => fetchToken(serve.url, serve.caPem, "admin", serve.adminPassword, ["repository:rot/app:pull"]);
const pull = (bearer: string) =>
  httpsRequest(`${serve.url}/v2/rot/app/tags/list`, {
    ca: serve.caPem,
    headers: { Authorization: `Bearer ${bearer}` },
  });
const jwks = async () =>
  JSON.parse((await httpsRequest(`${serve.url}/.well-known/jwks.json`, { ca: serve.caPem })).body.toString()).keys as {
    kid: string;
  }[];

describe("rotating the token-signing key", () => {
  it("signs new tokens with the new key while tokens of the old one keep working", async () => {
    const before = await token();
    const oldKid = decodeProtectedHeader(before).kid;
    expect((await jwks()).map((k) => k.kid)).toEqual([oldKid]);

    await promisify(execFile)(process.execPath, [
      cliPath,
      "token",
      "rotate",
      "--certs",
      serve.certsDir,
      "--data",
      serve.dataDir,
    ]);
    // The first token signed with the new key, from whichever server process read it first, passes at
    // every process at once, also one that has not read the new key yet.
    let after = before;
    for (let i = 0; i < 50 && decodeProtectedHeader(after).kid === oldKid; i++) {
      await sleep(100);
      after = await token();
    }
    expect(decodeProtectedHeader(after).kid).not.toBe(oldKid);
    // Consecutive connections alternate between the server processes: two answers cover both.
    expect([(await pull(after)).status, (await pull(after)).status]).toEqual([404, 404]);
    expect([(await pull(before)).status, (await pull(before)).status]).toEqual([404, 404]);

    const bothKnowBoth = async () => (await jwks()).length === 2 && (await jwks()).length === 2;
    for (let i = 0; i < 50 && !(await bothKnowBoth()); i++) await sleep(200);
    const kids = (await jwks()).map((k) => k.kid);
    expect(kids).toHaveLength(2);
    expect(kids).toContain(oldKid);
    expect(kids).toContain(decodeProtectedHeader(after).kid);

    const records = [...readRecords(auditDir(serve.dataDir))].flatMap((e) => (e.record ? [e.record] : []));
    expect(records.find((r) => r.action === "key.rotate")).toMatchObject({
      result: "success",
      actor: { source: "cli" },
      detail: { alg: "ES256" },
    });
  });
});
