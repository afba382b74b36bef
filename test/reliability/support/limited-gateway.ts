import type { ConnectionLimits, Gateway } from "../../../src/gateway/server.js";
import { startGatewayUnderTest } from "../../support/gateway-under-test.js";
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
  const under = await startGatewayUnderTest({ limits });
  const client = createRegistryClient({ url: under.url, ca: under.caPem, user: "", password: "" });
  return {
    url: under.url,
    port: under.port,
    caPem: under.caPem,
    dataDir: under.dataDir,
    gateway: under.gateway,
    client,
    async stop() {
      client.close();
      await under.stop();
    },
  };
}
