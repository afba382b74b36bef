import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * What a containers/image client (skopeo, podman) reads, written by the test instead of taken from
 * /etc/containers: a registries.conf with no search registries and an accept-anything signature policy.
 */
export interface ContainersClientConfig {
  registriesConf: string;
  /** For `skopeo --policy`. */
  policy: string;
  /** The environment with `CONTAINERS_REGISTRIES_CONF` pointing at `registriesConf`. */
  env: NodeJS.ProcessEnv;
}

export interface ContainersClientOptions {
  /** HOST:PORT listed as a `[[registry]]` with `insecure = false`, so that nothing may fall back to plain HTTP. */
  registry?: string;
}

/** Writes `registries.conf` and `policy.json` into `dir`. */
export async function writeContainersClientConfig(
  dir: string,
  options: ContainersClientOptions = {},
): Promise<ContainersClientConfig> {
  const registriesConf = join(dir, "registries.conf");
  const registry =
    options.registry === undefined ? "" : `\n[[registry]]\nlocation = "${options.registry}"\ninsecure = false\n`;
  await writeFile(registriesConf, `unqualified-search-registries = []\n${registry}`);
  const policy = join(dir, "policy.json");
  await writeFile(policy, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  return { registriesConf, policy, env: { ...process.env, CONTAINERS_REGISTRIES_CONF: registriesConf } };
}

/** A cert dir (`--cert-dir`, a certs.d entry) at `dir` that trusts only `caPem`, as its `ca.crt`. */
export async function writeCertDir(dir: string, caPem: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "ca.crt"), caPem);
  return dir;
}
