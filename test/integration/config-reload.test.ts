import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify as stringifyYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashPassword, writeHtpasswd } from "../../src/auth/authn/htpasswd-file.js";
import { loadConfig } from "../../src/config/loader.js";
import { planReload, startConfigReloader, type ReloaderOptions } from "../../src/config/reload.js";
import { configSchema } from "../../src/config/schema.js";
import { createLogger } from "../../src/log.js";
import { startPortcullis, type Portcullis } from "../../src/portcullis.js";
import { httpsRequest } from "../support/https-client.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

/** The config file of this test's server, with `policies` and `groups` as given. */
function configText(dir: string, policies: unknown[], groups: Record<string, string[]> = { admins: ["admin"] }) {
  return stringifyYaml({
    listen: "127.0.0.1:0",
    data: join(dir, "data"),
    certs: join(dir, "certs"),
    auth: { groups },
    policies,
  });
}

const pushAnywhere = [{ account: "*", repository: "*", actions: ["pull", "push"] }];
const pullOnly = [{ account: "*", repository: "*", actions: ["pull"] }];

describe("a running server and its changed config file", () => {
  let dir: TempDir;
  let file: string;
  let server: Portcullis;
  let reloader: ReturnType<typeof startConfigReloader>;
  let reloaderOptions: ReloaderOptions;
  const lines: string[] = [];

  /** The actions a token for alice on team/app carries, as the running server grants them. */
  async function aliceMay(): Promise<string[]> {
    const query = new URLSearchParams({ service: "portcullis", scope: "repository:team/app:pull,push,delete" });
    const res = await httpsRequest(`https://127.0.0.1:${server.gateway.port}/token?${query}`, {
      ca: server.material.caCertPem as string,
      headers: { Authorization: `Basic ${Buffer.from("alice:alice-password").toString("base64")}` },
    });
    const token = (JSON.parse(res.body.toString()) as { token: string }).token;
    const claims = JSON.parse(Buffer.from(token.split(".")[1] as string, "base64url").toString()) as {
      access: { actions: string[] }[];
    };
    return claims.access[0]?.actions.sort() ?? [];
  }

  async function eventually(check: () => Promise<boolean>): Promise<void> {
    for (let i = 0; i < 50 && !(await check()); i++) await sleep(100);
  }

  beforeAll(async () => {
    dir = await makeTempDir("portcullis-reload-");
    file = join(dir.path, "portcullis.yaml");
    await writeFile(file, configText(dir.path, pushAnywhere));
    const config = await loadConfig({ file, env: {} });
    await writeHtpasswd(join(config.certs, "htpasswd"), [
      { user: "alice", hash: await hashPassword("alice-password") },
    ]);
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ level: "info", destination: sink });
    server = await startPortcullis(config, { logger, names: ["127.0.0.1"] });
    reloaderOptions = {
      initial: config,
      load: () => loadConfig({ file, env: {} }),
      apply: (next) => server.auth.reload(next),
      files: [file],
      logger,
      intervalMs: 100,
    };
    reloader = startConfigReloader(reloaderOptions);
  });

  afterAll(async () => {
    reloader?.stop();
    await server?.close();
    await dir?.stop();
  });

  it("applies an edited policy without a restart, and logs what reloaded", async () => {
    expect(await aliceMay()).toEqual(["pull", "push"]);
    await writeFile(file, configText(dir.path, pullOnly));
    await eventually(async () => (await aliceMay()).join() === "pull");
    expect(await aliceMay()).toEqual(["pull"]);
    expect(lines.join("")).toContain('"msg":"reloaded policies"');
  });

  it("keeps the running policy when the edited file is not valid", async () => {
    await writeFile(file, `${configText(dir.path, pullOnly)}tls: { names: ["bad name!"] }\n`);
    await eventually(async () => lines.join("").includes("the changed configuration is not valid"));
    expect(lines.join("")).toContain("tls.names[0]");
    expect(await aliceMay()).toEqual(["pull"]);
  });

  it("applies a group change on SIGHUP, and says which changed keys need a restart", async () => {
    const groupRule = [{ group: "developers", repository: "team/*", actions: ["pull", "push", "delete"] }];
    await writeFile(file, configText(dir.path, groupRule, { admins: ["admin"], developers: [] }));
    await eventually(async () => (await aliceMay()).length === 0);
    expect(await aliceMay()).toEqual([]);
    // From here on only a signal makes it look: the file watch is stopped.
    reloader.stop();
    reloader = startConfigReloader({ ...reloaderOptions, initial: await loadConfig({ file, env: {} }), files: [] });
    const config = configText(dir.path, groupRule, { admins: ["admin"], developers: ["alice"] });
    await writeFile(file, config.replace("listen: 127.0.0.1:0", "listen: 127.0.0.1:5999"));
    await sleep(300);
    expect(await aliceMay()).toEqual([]);
    process.kill(process.pid, "SIGHUP");
    await eventually(async () => (await aliceMay()).length === 3);
    expect(await aliceMay()).toEqual(["delete", "pull", "push"]);
    expect(lines.join("")).toContain("reloaded auth.groups; restart to apply listen");
  });

  it("tells reloadable keys from those that need a restart", async () => {
    const before = configSchema.parse({});
    const after = { ...before, listen: "127.0.0.1:6000", rateLimits: { ...before.rateLimits } };
    after.rateLimits.tokenRequestsPerIp = { points: 1, durationSeconds: 1 };
    expect(planReload(before, after)).toEqual({ reload: ["rateLimits"], restart: ["listen"] });
  });
});
