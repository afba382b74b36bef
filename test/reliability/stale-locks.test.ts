import { writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PortcullisServe } from "../support/portcullis-serve.js";
import { clientFor, startServer } from "./support/crash-harness.js";
import type { RegistryClient } from "./support/registry-client.js";

/**
 * In a container the server is PID 1 after every restart, so a lock left by a killed PID 1 (kill -9 while
 * holding `audit.lock`) names the new process too. A lock that names our PID but that we do not hold is
 * stale (src/fs/lock-file.ts keeps the set of locks it holds); before, every audit write failed for good.
 */
describe("a lock left by an earlier process with the same PID", () => {
  let server: PortcullisServe;
  let client: RegistryClient;
  beforeAll(async () => {
    server = await startServer(undefined);
    client = clientFor(server);
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
  });

  it("does not stop token issuance for good", async () => {
    expect((await client.token(["repository:locks/app:pull"])).status).toBe(200);
    // What a killed PID 1 leaves for the PID 1 that replaces it.
    writeFileSync(join(server.dataDir, "audit", "audit.lock"), `${server.process.pid} ${hostname()}\n`);
    const started = Date.now();
    let status = 0;
    while (status !== 200 && Date.now() - started < 15_000) {
      status = (await client.token(["repository:locks/app:pull"])).status;
    }
    expect(status).toBe(200);
  });
});
