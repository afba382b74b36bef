import { join } from "node:path";
import type { Config } from "../../src/config/schema.js";
import { configSchema } from "../../src/config/schema.js";
import { startGateway, type Gateway } from "../../src/gateway/server.js";
import { silentLogger } from "../../src/log.js";
import { ensureTlsMaterial, type TlsMaterial } from "../../src/pki/tls-material.js";
import { startRegistryServer, type RegistryServer } from "../../src/registry/server.js";
import { makeTempDir } from "./temp-dir.js";

export interface GatewayUnderTest {
  url: string;
  port: number;
  caPem: string;
  certsDir: string;
  material: TlsMaterial;
  gateway: Gateway;
  registry?: RegistryServer;
  stop(): Promise<void>;
}

export interface GatewayTestOptions {
  /** Front this URL instead of a fresh built-in registry. */
  upstreamUrl?: string;
  trustedProxies?: string[];
  publicUrl?: string;
}

/** The gateway in this process on 127.0.0.1:0, with a fresh CA and a built-in registry on a loopback port. */
export async function startGatewayUnderTest(options: GatewayTestOptions = {}): Promise<GatewayUnderTest> {
  const dir = await makeTempDir("portcullis-gateway-");
  const config: Config = configSchema.parse({ certs: join(dir.path, "certs"), data: join(dir.path, "data") });
  const material = await ensureTlsMaterial({ config, names: ["localhost", "127.0.0.1"] });
  const registry = options.upstreamUrl
    ? undefined
    : await startRegistryServer({ root: config.data, listen: "127.0.0.1:0" });
  const gateway = await startGateway({
    host: "127.0.0.1",
    port: 0,
    tls: material,
    ca: { current: () => material },
    upstream: { url: options.upstreamUrl ?? (registry as RegistryServer).url },
    trustedProxies: options.trustedProxies ?? [],
    publicUrl: options.publicUrl,
    logger: silentLogger,
  });
  return {
    url: `https://127.0.0.1:${gateway.port}`,
    port: gateway.port,
    caPem: material.caCertPem as string,
    certsDir: config.certs,
    material,
    gateway,
    registry,
    async stop() {
      await gateway.close();
      await registry?.close();
      await dir.stop();
    },
  };
}
