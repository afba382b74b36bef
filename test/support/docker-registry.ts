import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { spawnDaemon, waitUntil, type DaemonProcess } from "./daemon-process.js";
import { freePort } from "./free-port.js";
import { makeTempDir } from "./temp-dir.js";
import { requireTool } from "./tools.js";

export interface DockerRegistry {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT, the form image references use */
  hostPort: string;
  /** The storage root (its rootdirectory): blobs are under `<root>/docker/registry/v2/`. */
  root: string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

export interface DockerRegistryOptions {
  /** Serve this storage root, which stop() leaves in place; by default a new temp dir that stop() removes. */
  root?: string;
}

function registryConfig(root: string, hostPort: string): string {
  return stringify({
    version: 0.1,
    log: { level: "info", formatter: "text" },
    storage: {
      filesystem: { rootdirectory: root },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: hostPort, secret: randomBytes(16).toString("hex") },
    health: { storagedriver: { enabled: false } },
  });
}

/**
 * Debian's docker-registry (CNCF distribution 2.8), the reference registry, with a config of its own:
 * filesystem storage, deletes enabled, plain HTTP on 127.0.0.1.
 */
export async function startDockerRegistry(options: DockerRegistryOptions = {}): Promise<DockerRegistry> {
  const binary = requireTool("docker-registry", "docker-registry");
  const work = await makeTempDir("docker-registry-");
  const root = options.root ?? join(work.path, "root");
  let daemon: DaemonProcess | undefined;
  let hostPort = "";
  try {
    for (let attempt = 1; ; attempt++) {
      hostPort = `127.0.0.1:${await freePort()}`;
      const configPath = join(work.path, "config.yml");
      await writeFile(configPath, registryConfig(root, hostPort));
      const started = spawnDaemon(binary, ["serve", configPath], {
        logPath: join(work.path, `registry-${attempt}.log`),
      });
      try {
        await waitUntil(async () => (await fetch(`http://${hostPort}/v2/`)).status === 200, {
          what: `docker-registry on ${hostPort}`,
          daemon: started,
        });
        daemon = started;
        break;
      } catch (error) {
        await started.stop();
        const portTaken = (await started.log()).includes("address already in use");
        if (!portTaken || attempt >= 3) throw error;
      }
    }
  } catch (error) {
    await work.stop();
    throw error;
  }
  const running = daemon;
  return {
    url: `http://${hostPort}`,
    hostPort,
    root,
    log: () => running.log(),
    async stop() {
      await running.stop();
      await work.stop();
    },
  };
}
