import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { stringify as stringifyYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashPassword, writeHtpasswd } from "../../src/auth/authn/htpasswd-file.js";
import { loadConfig } from "../../src/config/loader.js";
import { createPolicyEndpoint } from "../../src/gateway/policy-endpoint.js";
import { silentLogger } from "../../src/log.js";
import { startPortcullis, type Portcullis } from "../../src/portcullis.js";
import { runPortcullis } from "../support/cli-run.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

const config = (dir: string, actions: string[]) =>
  stringifyYaml({
    listen: "127.0.0.1:0",
    data: join(dir, "data"),
    certs: join(dir, "certs"),
    policies: [
      { group: "admins", repository: "*", actions: ["*"] },
      { account: "*", repository: "team/*", actions },
    ],
  });

describe("policy check --server", () => {
  let dir: TempDir;
  let file: string;
  let server: Portcullis;
  let endpoint: Server;
  let url: string;

  beforeAll(async () => {
    dir = await makeTempDir("portcullis-policy-server-");
    file = join(dir.path, "portcullis.yaml");
    await writeFile(file, config(dir.path, ["pull", "push"]));
    const loaded = await loadConfig({ file, env: {} });
    await writeHtpasswd(join(loaded.certs, "htpasswd"), [
      { user: "admin", hash: await hashPassword("admin-password") },
      { user: "alice", hash: await hashPassword("alice-password") },
    ]);
    server = await startPortcullis(loaded, { logger: silentLogger, names: ["127.0.0.1"] });
    // The endpoint as the gateway routes it (GET /policy/check), over the running server's own policy.
    const handle = createPolicyEndpoint({ ...server.auth, adminGroup: loaded.auth.adminGroup });
    endpoint = createServer({ cert: server.material.certChainPem, key: server.material.keyPem }, handle);
    await new Promise<void>((resolve) => endpoint.listen(0, "127.0.0.1", resolve));
    url = `https://127.0.0.1:${(endpoint.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    endpoint?.close();
    await server?.close();
    await dir?.stop();
  });

  const ask = (user: string, credentials: [string, string], ...extra: string[]) =>
    runPortcullis(
      ["policy", "check", user, "team/app", "push", "--server", url, "--certs", join(dir.path, "certs"), ...extra],
      { env: { ...process.env, PORTCULLIS_USERNAME: credentials[0], PORTCULLIS_PASSWORD: credentials[1] } },
    );

  it("answers from the policy the server runs with, not from the file on disk", async () => {
    await writeFile(file, config(dir.path, ["pull"]));
    const fromFile = await runPortcullis(["policy", "check", "alice", "team/app", "push", "--config", file]);
    expect(fromFile.stdout).toContain("push: denied");
    const fromServer = await ask("alice", ["admin", "admin-password"]);
    expect(fromServer.stdout).toContain(
      "alice on team/app: pull, push\n  because policies[1] (account * on team/*: pull, push) matched",
    );
    expect(fromServer.stdout).toContain("push: allowed");
    expect(fromServer.code).toBe(0);
  });

  it("lets a user ask about themselves, but only admins about others", async () => {
    expect((await ask("alice", ["alice", "alice-password"], "--json")).code).toBe(0);
    const refused = await ask("admin", ["alice", "alice-password"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("only members of admins may ask about other users");
  });

  it("says which credentials it needs", async () => {
    const result = await runPortcullis(["policy", "check", "alice", "team/app", "--server", url], {
      env: { ...process.env, PORTCULLIS_USERNAME: "", PORTCULLIS_PASSWORD: "" },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("set PORTCULLIS_USERNAME and PORTCULLIS_PASSWORD");
  });
});
