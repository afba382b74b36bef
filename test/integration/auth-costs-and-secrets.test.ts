import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuthGatewayUnderTest, type AuthGatewayUnderTest } from "../support/auth-gateway-under-test.js";
import { buildDockerSchema2Image } from "../support/images.js";
import { writeCertDir } from "../support/containers-client.js";
import { copyOverTls, inspectRawOverTls } from "../support/skopeo.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";
import { requireTool } from "../support/tools.js";

const password = "a-password-nobody-should-log";
let gw: AuthGatewayUnderTest;
let work: TempDir;
let certDir: string;

beforeAll(async () => {
  requireTool("skopeo", "skopeo");
  gw = await startAuthGatewayUnderTest({ users: { pusher: password } });
  work = await makeTempDir("portcullis-costs-");
  certDir = await writeCertDir(join(work.path, "certs.d"), gw.caPem);
});
afterAll(async () => {
  await gw?.stop();
  await work?.stop();
});

describe("what authentication costs", () => {
  it("runs bcrypt at most twice for a push of a 50-layer image", async () => {
    const image = await buildDockerSchema2Image(join(work.path, "fifty"), {
      layerSizes: Array.from({ length: 50 }, (_, i) => 512 + i),
    });
    const before = gw.bcryptCount();
    await copyOverTls(image.reference, `docker://127.0.0.1:${gw.port}/costs/fifty:v1`, {
      certDir,
      creds: `pusher:${password}`,
    });
    const tokens = gw
      .logs()
      .split("\n")
      .filter((line) => line.includes('"token issued"')).length;
    expect(tokens).toBeGreaterThanOrEqual(1);
    expect(gw.bcryptCount() - before).toBeGreaterThanOrEqual(1);
    expect(gw.bcryptCount() - before).toBeLessThanOrEqual(2);
  });
});

describe("what the logs hold", () => {
  it("never shows a password, an access token or a refresh token from a whole login, push and pull", async () => {
    const basic = { Authorization: `Basic ${Buffer.from(`pusher:${password}`).toString("base64")}` };
    const login = JSON.parse(
      (
        await gw.request("/token?service=portcullis&offline_token=true&client_id=docker", { headers: basic })
      ).body.toString(),
    );
    const refreshed = JSON.parse(
      (
        await gw.request("/token", {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({
            grant_type: "refresh_token",
            refresh_token: login.refresh_token,
            service: "portcullis",
            scope: "repository:secrets/app:pull,push",
          }).toString(),
        })
      ).body.toString(),
    );
    const bearer = { Authorization: `Bearer ${refreshed.access_token}` };
    const digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    expect(
      (
        await gw.request(`/v2/secrets/app/blobs/uploads/?digest=${digest}`, {
          method: "POST",
          headers: bearer,
          body: "{}",
        })
      ).status,
    ).toBe(201);
    expect((await gw.request(`/v2/secrets/app/blobs/${digest}`, { headers: bearer })).status).toBe(200);
    await gw.token("pusher", "the-wrong-password-also-secret", []);
    await inspectRawOverTls(`docker://127.0.0.1:${gw.port}/costs/fifty:v1`, { certDir, creds: `pusher:${password}` });

    const logs = gw.logs();
    expect(logs).toContain('"token issued"');
    expect(logs).toContain('"status":201');
    for (const secret of [
      password,
      "the-wrong-password-also-secret",
      login.token,
      login.refresh_token,
      refreshed.access_token,
      basic.Authorization.slice(6),
    ]) {
      expect(logs.includes(secret), `a secret appears in the logs: ${secret.slice(0, 12)}…`).toBe(false);
    }
  });
});
