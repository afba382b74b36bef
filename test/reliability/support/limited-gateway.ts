import { join } from "node:path";
import { configSchema, type Config } from "../../../src/config/schema.js";
import { startGateway, type ConnectionLimits, type Gateway } from "../../../src/gateway/server.js";
import { silentLogger } from "../../../src/log.js";
import { ensureTlsMaterial } from "../../../src/pki/tls-material.js";
import { createRegistry } from "../../../src/registry/app.js";
import { createFilesystemDriver } from "../../../src/registry/storage/filesystem.js";
import { makeTempDir } from "../../support/temp-dir.js";
import { createRegistryClient, type RegistryClient } from "./registry-client.js";

export interface LimitedGateway {
  url: string;
  port: number;
  caPem: string;
  dataDir: string;
  gateway: Gateway;
  /** A client with no credentials (this gateway has no auth). */
  client: RegistryClient;
  stop(): Promise<void>;
}

/** The gateway without auth over a fresh built-in registry, in this process, with the given connection limits. */
export async function startLimitedGateway(limits: Partial<ConnectionLimits>): Promise<LimitedGateway> {
  const dir = await makeTempDir("portcullis-rel-limits-");
  const config: Config = configSchema.parse({ certs: join(dir.path, "certs"), data: join(dir.path, "data") });
  const material = await ensureTlsMaterial({ config, names: ["localhost", "127.0.0.1"] });
  const gateway = await startGateway({
    listen: { host: "127.0.0.1", port: 0 },
    tls: material,
    ca: { current: () => material },
    registry: { builtIn: createRegistry({ storage: createFilesystemDriver(config.data) }) },
    trustedProxies: [],
    limits,
    logger: silentLogger,
  });
  const url = `https://127.0.0.1:${gateway.port}`;
  const client = createRegistryClient({ url, ca: material.caCertPem as string, user: "", password: "" });
  return {
    url,
    port: gateway.port,
    caPem: material.caCertPem as string,
    dataDir: config.data,
    gateway,
    client,
    async stop() {
      client.close();
      await gateway.close();
      await dir.stop();
    },
  };
}
