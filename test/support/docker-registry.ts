import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { startOnFreePort } from "./daemon-on-free-port.js";
import { daemonInDir, spawnDaemon, type RunningDaemon } from "./daemon-process.js";
import { httpsRequest } from "./https-client.js";
import { startInTempDir } from "./temp-dir.js";
import { requireTool } from "./tools.js";

export interface DockerRegistry extends RunningDaemon {
  /** http://127.0.0.1:PORT (https:// when started with `tls`) */
  url: string;
  /** 127.0.0.1:PORT, the form image references use */
  hostPort: string;
  /** The storage root (its rootdirectory): blobs are under `<root>/docker/registry/v2/`. */
  root: string;
  /** Its config file, as `docker-registry serve` read it. */
  configPath: string;
}

export interface DockerRegistryOptions {
  /** Serve this storage root, which stop() leaves in place; by default a new temp dir that stop() removes. */
  root?: string;
  /**
   * The config's `auth` section, e.g. `{ token: { realm, service, issuer, rootcertbundle } }`; none by
   * default. With it, the unauthenticated `GET /v2/` that says the registry is up answers 401.
   */
  auth?: Record<string, unknown>;
  /** Serve HTTPS with this certificate and key (PEM files); `caPem` is what the readiness check trusts. */
  tls?: { certificate: string; key: string; caPem: string };
}

function registryConfig(root: string, hostPort: string, options: DockerRegistryOptions): string {
  const tls = options.tls === undefined ? {} : { tls: { certificate: options.tls.certificate, key: options.tls.key } };
  return stringify({
    version: 0.1,
    log: { level: "info", formatter: "text" },
    storage: {
      filesystem: { rootdirectory: root },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: hostPort, secret: randomBytes(16).toString("hex"), ...tls },
    health: { storagedriver: { enabled: false } },
    ...(options.auth === undefined ? {} : { auth: options.auth }),
  });
}

/**
 * Debian's docker-registry (CNCF distribution 2.8), the reference registry, with a config of its own:
 * filesystem storage, deletes enabled, plain HTTP on 127.0.0.1 (or HTTPS with `tls`), no auth unless given.
 */
export async function startDockerRegistry(options: DockerRegistryOptions = {}): Promise<DockerRegistry> {
  const binary = requireTool("docker-registry", "docker-registry");
  const scheme = options.tls === undefined ? "http" : "https";
  const readyStatus = options.auth === undefined ? 200 : 401;
  async function status(url: string): Promise<number> {
    if (options.tls === undefined) return (await fetch(url)).status;
    return (await httpsRequest(url, { ca: options.tls.caPem })).status;
  }
  return startInTempDir("docker-registry-", async (work) => {
    const root = options.root ?? join(work.path, "root");
    const configPath = join(work.path, "config.yml");
    const { daemon, hostPort } = await startOnFreePort(async (port, attempt) => {
      const hostPort = `127.0.0.1:${port}`;
      await writeFile(configPath, registryConfig(root, hostPort, options));
      const daemon = spawnDaemon(binary, ["serve", configPath], {
        logPath: join(work.path, `registry-${attempt}.log`),
      });
      const ready = async () => (await status(`${scheme}://${hostPort}/v2/`)) === readyStatus;
      return { daemon, what: `docker-registry on ${hostPort}`, ready, hostPort };
    });
    return {
      url: `${scheme}://${hostPort}`,
      hostPort,
      root,
      configPath,
      ...daemonInDir(daemon, work),
    };
  });
}

export interface AccessLogEntry {
  method: string;
  /** The request path, with its query: `/v2/library/alpine/manifests/3`. */
  path: string;
}

/** The requests docker-registry's access log shows (`"GET /v2/... HTTP/1.1" 200 ...`), in order. */
export async function requestsSeen(registry: RunningDaemon): Promise<AccessLogEntry[]> {
  const found: AccessLogEntry[] = [];
  for (const match of (await registry.log()).matchAll(/"(GET|HEAD|PUT|POST|PATCH|DELETE) (\/v2\/\S*) HTTP\/[\d.]+"/g))
    found.push({ method: match[1] as string, path: match[2] as string });
  return found;
}
