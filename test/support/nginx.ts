import { chmod, readFile, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { spawnDaemon, waitUntil, type DaemonProcess } from "./daemon-process.js";
import { freePort } from "./free-port.js";
import { makeTempDir } from "./temp-dir.js";
import { requireTool } from "./tools.js";

export interface Nginx {
  /** `https://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** The server block as nginx read it, placeholders filled in. */
  serverConfig: string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

export interface NginxOptions {
  /** A server-block template from nginx-compat/, with `@NAME@` placeholders. */
  template: string;
  /** A value for every placeholder but `@LISTEN@`, which is the free loopback port picked here. */
  values: Record<string, string>;
}

/** Replaces every `@NAME@`; throws when the template holds a placeholder that has no value. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  const filled = template.replace(/@([A-Z_]+)@/g, (whole, name: string) => values[name] ?? whole);
  const left = [...new Set(filled.match(/@[A-Z_]+@/g) ?? [])];
  if (left.length > 0) throw new Error(`no value for ${left.join(", ")}`);
  return filled;
}

// nginx.conf around the server block: every path nginx writes (pid, temp files, logs) in the temp dir, so
// the system nginx, its config and /var/lib/nginx are never touched.
function mainConfig(prefix: string): string {
  return `worker_processes 1;
pid ${prefix}/nginx.pid;
events { worker_connections 256; }
http {
  access_log ${prefix}/access.log;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  include ${prefix}/server.conf;
}
`;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * A real nginx (`daemon off`, master and one worker) serving one server block from nginx-compat/ on
 * 127.0.0.1 at a free port.
 */
export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const binary = requireTool("nginx", "nginx");
  const work = await makeTempDir("nginx-");
  // The worker runs as an unprivileged user when the master is root; it must reach its temp dirs.
  await chmod(work.path, 0o755);
  const template = await readFile(options.template, "utf8");
  let daemon: DaemonProcess | undefined;
  let port = 0;
  let serverConfig = "";
  try {
    const confPath = join(work.path, "nginx.conf");
    await writeFile(confPath, mainConfig(work.path));
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      serverConfig = fillTemplate(template, { ...options.values, LISTEN: `127.0.0.1:${port}` });
      await writeFile(join(work.path, "server.conf"), serverConfig);
      const started = spawnDaemon(binary, ["-c", confPath, "-p", work.path, "-g", "daemon off; error_log stderr;"], {
        logPath: join(work.path, `nginx-${attempt}.log`),
      });
      try {
        await waitUntil(() => accepts(port), { what: `nginx on 127.0.0.1:${port}`, daemon: started });
        daemon = started;
        break;
      } catch (error) {
        await started.stop();
        const portTaken = (await started.log()).includes("Address already in use");
        if (!portTaken || attempt >= 3) throw error;
      }
    }
  } catch (error) {
    await work.stop();
    throw error;
  }
  const running = daemon;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    serverConfig,
    log: () => running.log(),
    async stop() {
      await running.stop();
      await work.stop();
    },
  };
}
