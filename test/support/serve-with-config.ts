import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { runPortcullis, type CliResult } from "./cli-run.js";
import type { CommandResult } from "./command.js";
import { writeCertDir, writeContainersClientConfig } from "./containers-client.js";
import { portcullisUser } from "./portcullis-cli.js";
import { startPortcullisServe, type PortcullisServe } from "./portcullis-serve.js";
import type { TlsClientOptions } from "./skopeo.js";
import { removeTempDir } from "./temp-dir.js";

export interface Credentials {
  user: string;
  password: string;
}

/** A `portcullis serve --config` the test wrote, with what a test needs to reach it from both sides. */
export interface ServeWithConfig {
  serve: PortcullisServe;
  /** The YAML file serve was started with. */
  config: string;
  /** `127.0.0.1:PORT`, the registry's name in image references. */
  registry: string;
  /** skopeo signed in as `who`, trusting only serve's CA (a cert dir), with a policy and registries.conf of its own. */
  clientAs(who: Credentials): TlsClientOptions;
  /** `portcullis ARGS` as an operator runs it on the server host: serve's `--data`, `--certs` and `--config`. */
  local(args: readonly string[]): Promise<CliResult>;
  /** `portcullis ARGS` from a client machine: `--server` and serve's CA, signed in as `who`. */
  remote(who: Credentials, args: readonly string[]): Promise<CliResult>;
  /** `portcullis user add`, with serve's config. */
  addUser(who: Credentials): Promise<CommandResult>;
  /** The `admin` account the first start created. */
  admin: Credentials;
  /** Stops serve and removes its home; `dir` stays the test's. */
  stop(): Promise<void>;
}

/**
 * Writes `config` as `DIR/portcullis.yaml`, starts `portcullis serve` with it, and writes a skopeo client
 * config for it into `dir` (`registries.conf`, `policy.json`, `certs.d/`).
 */
export async function startServeWithConfig(
  dir: string,
  config: Record<string, unknown>,
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<ServeWithConfig> {
  const configPath = join(dir, "portcullis.yaml");
  await writeFile(configPath, stringify(config));
  const serve = await startPortcullisServe({ args: ["--config", configPath], env: options.env });
  const stop = async () => {
    await serve.stop();
    await removeTempDir(serve.home);
  };
  try {
    const registry = `127.0.0.1:${serve.port}`;
    const { policy, env } = await writeContainersClientConfig(dir, { registry });
    const certDir = await writeCertDir(join(dir, "certs.d"), serve.caPem);
    return {
      serve,
      config: configPath,
      registry,
      clientAs: (who) => ({ certDir, policy, env, creds: `${who.user}:${who.password}` }),
      local: (args) =>
        runPortcullis([...args, "--data", serve.dataDir, "--certs", serve.certsDir, "--config", configPath]),
      remote: (who, args) =>
        runPortcullis([...args, "--server", serve.url, "--certs", serve.certsDir, "--config", configPath], {
          env: { ...process.env, PORTCULLIS_USERNAME: who.user, PORTCULLIS_PASSWORD: who.password },
        }),
      addUser: (who) => portcullisUser(serve, "add", who.user, { password: who.password, config: configPath }),
      admin: { user: "admin", password: serve.adminPassword },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
