import { connect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/free-port.js";
import { startGatewayUnderTest, type GatewayUnderTest } from "../support/gateway-under-test.js";
import { httpsRequest } from "../support/https-client.js";

describe("the gateway in front of the built-in registry", () => {
  let gw: GatewayUnderTest;
  beforeAll(async () => {
    gw = await startGatewayUnderTest();
  });
  afterAll(async () => {
    await gw.stop();
  });

  it("serves the registry API over TLS with a certificate from its own CA", async () => {
    const res = await httpsRequest(`${gw.url}/v2/`, { ca: gw.caPem });
    expect(res.status).toBe(200);
    expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
  });

  it("points upload Location headers at its own public URL", async () => {
    const res = await httpsRequest(`${gw.url}/v2/team/app/blobs/uploads/`, { method: "POST", ca: gw.caPem });
    expect(res.status).toBe(202);
    expect(res.headers.location).toMatch(
      new RegExp(`^https://127\\.0\\.0\\.1:${gw.port}/v2/team/app/blobs/uploads/[0-9a-f-]+$`),
    );
  });

  it("ignores X-Forwarded-Host from a client that is not a trusted proxy", async () => {
    const res = await httpsRequest(`${gw.url}/v2/team/app/blobs/uploads/`, {
      method: "POST",
      ca: gw.caPem,
      headers: { "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http" },
    });
    expect(res.headers.location).toMatch(new RegExp(`^https://127\\.0\\.0\\.1:${gw.port}/v2/`));
  });

  it("serves the CA as PEM and DER, and an install script for the name the client used", async () => {
    const pem = await httpsRequest(`${gw.url}/ca.crt`, { ca: gw.caPem });
    expect(pem.body.toString()).toBe(gw.caPem);
    const der = await httpsRequest(`${gw.url}/ca.der`, { ca: gw.caPem });
    expect(der.headers["content-type"]).toBe("application/pkix-cert");
    const script = await httpsRequest(`${gw.url}/ca/install.sh`, { ca: gw.caPem });
    expect(script.body.toString()).toContain(`REGISTRY='127.0.0.1:${gw.port}'`);
    const named = await httpsRequest(`${gw.url}/ca/install.sh?host=registry.example:5000`, { ca: gw.caPem });
    expect(named.body.toString()).toContain("REGISTRY='registry.example:5000'");
    const page = await httpsRequest(`${gw.url}/ca`, { ca: gw.caPem });
    expect(page.body.toString()).toContain(gw.material.caFingerprint);
  });

  it("refuses a host parameter that is not a registry name", async () => {
    const res = await httpsRequest(`${gw.url}/ca/install.sh?host=${encodeURIComponent("x'; rm -rf /")}`, {
      ca: gw.caPem,
    });
    expect(res.status).toBe(400);
  });

  it("speaks TLS 1.2 and 1.3 and refuses TLS 1.1", async () => {
    const handshake = (version: "TLSv1.1" | "TLSv1.2" | "TLSv1.3") =>
      new Promise<string>((resolve, reject) => {
        // SECLEVEL=0 lets this client offer TLS 1.1 at all, so the refusal we see is the server's.
        const socket = connect({
          host: "127.0.0.1",
          port: gw.port,
          ca: gw.caPem,
          servername: "localhost",
          minVersion: version,
          maxVersion: version,
          ciphers: "DEFAULT:@SECLEVEL=0",
        });
        socket.once("secureConnect", () => {
          resolve(socket.getProtocol() ?? "");
          socket.end();
        });
        socket.once("error", reject);
      });
    expect(await handshake("TLSv1.2")).toBe("TLSv1.2");
    expect(await handshake("TLSv1.3")).toBe("TLSv1.3");
    await expect(handshake("TLSv1.1")).rejects.toThrow(/protocol version|unsupported protocol/i);
  });
});

describe("the gateway with trusted proxies", () => {
  it("believes X-Forwarded-Proto and -Host from a trusted proxy address", async () => {
    const gw = await startGatewayUnderTest({ trustedProxies: ["127.0.0.0/8"] });
    try {
      const res = await httpsRequest(`${gw.url}/v2/team/app/blobs/uploads/`, {
        method: "POST",
        ca: gw.caPem,
        headers: { "X-Forwarded-Host": "registry.example:8443", "X-Forwarded-Proto": "https" },
      });
      expect(res.headers.location).toMatch(/^https:\/\/registry\.example:8443\/v2\/team\/app\/blobs\/uploads\//);
    } finally {
      await gw.stop();
    }
  });
});

describe("the gateway when its upstream is down", () => {
  it("answers 503 with the OCI error JSON instead of hanging", async () => {
    const port = await freePort();
    const gw = await startGatewayUnderTest({ upstreamUrl: `http://127.0.0.1:${port}` });
    try {
      const res = await httpsRequest(`${gw.url}/v2/team/app/manifests/latest`, { ca: gw.caPem });
      expect(res.status).toBe(503);
      expect(res.headers["docker-distribution-api-version"]).toBe("registry/2.0");
      expect(JSON.parse(res.body.toString()).errors[0].code).toBe("UNAVAILABLE");
    } finally {
      await gw.stop();
    }
  });
});
