import { join } from "node:path";
import type { Config } from "../../src/config/schema.js";
import { configSchema } from "../../src/config/schema.js";
import { startGateway, type ConnectionLimits, type Gateway } from "../../src/gateway/server.js";
import { silentLogger } from "../../src/log.js";
import { ensureTlsMaterial, type TlsMaterial } from "../../src/pki/tls-material.js";
import { createRegistry } from "../../src/registry/app.js";
import { createFilesystemDriver } from "../../src/registry/storage/filesystem.js";
import { createUpstreamClient } from "../../src/upstream/client.js";
import { proxiedUpstreamConfig } from "../../src/upstream/clients.js";
import { makeTempDir } from "./temp-dir.js";

export interface GatewayUnderTest {
  url: string;
  port: number;
  caPem: string;
  certsDir: string;
  dataDir: string;
  material: TlsMaterial;
  gateway: Gateway;
  stop(): Promise<void>;
}

export interface GatewayTestOptions {
  /** Front this URL instead of a fresh built-in registry. */
  upstreamUrl?: string;
  trustedProxies?: string[];
  publicUrl?: string;
  limits?: Partial<ConnectionLimits>;
}

/** The gateway without auth in this process on 127.0.0.1:0, with a fresh CA, over the built-in registry or an upstream. */
export async function startGatewayUnderTest(options: GatewayTestOptions = {}): Promise<GatewayUnderTest> {
  const dir = await makeTempDir("portcullis-gateway-");
  const config: Config = configSchema.parse({ certs: join(dir.path, "certs"), data: join(dir.path, "data") });
  const material = await ensureTlsMaterial({ config, names: ["localhost", "127.0.0.1"] });
  const upstreamConfig = proxiedUpstreamConfig({ upstream: options.upstreamUrl, upstreams: {} });
  const upstream = upstreamConfig && createUpstreamClient(upstreamConfig, { logger: silentLogger });
  const gateway = await startGateway({
    listen: { host: "127.0.0.1", port: 0 },
    tls: material,
    ca: { current: () => material },
    registry: upstream ? { upstream } : { builtIn: createRegistry({ storage: createFilesystemDriver(config.data) }) },
    trustedProxies: options.trustedProxies ?? [],
    publicUrl: options.publicUrl,
    limits: options.limits,
    logger: silentLogger,
  });
  return {
    url: `https://127.0.0.1:${gateway.port}`,
    port: gateway.port,
    caPem: material.caCertPem as string,
    certsDir: config.certs,
    dataDir: config.data,
    material,
    gateway,
    async stop() {
      await gateway.close();
      upstream?.close();
      await dir.stop();
    },
  };
}
