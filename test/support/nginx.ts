import { chmod, readFile, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { startOnFreePort } from "./daemon-on-free-port.js";
import { daemonInDir, spawnDaemon, type RunningDaemon } from "./daemon-process.js";
import { startInTempDir } from "./temp-dir.js";
import { requireTool } from "./tools.js";

export interface Nginx extends RunningDaemon {
  /** `https://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** The server block as nginx read it, placeholders filled in. */
  serverConfig: string;
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
  const template = await readFile(options.template, "utf8");
  return startInTempDir("nginx-", async (work) => {
    // The worker runs as an unprivileged user when the master is root; it must reach its temp dirs.
    await chmod(work.path, 0o755);
    const confPath = join(work.path, "nginx.conf");
    await writeFile(confPath, mainConfig(work.path));
    const { daemon, port, serverConfig } = await startOnFreePort(async (port, attempt) => {
      const serverConfig = fillTemplate(template, { ...options.values, LISTEN: `127.0.0.1:${port}` });
      await writeFile(join(work.path, "server.conf"), serverConfig);
      const daemon = spawnDaemon(binary, ["-c", confPath, "-p", work.path, "-g", "daemon off; error_log stderr;"], {
        logPath: join(work.path, `nginx-${attempt}.log`),
      });
      return { daemon, what: `nginx on 127.0.0.1:${port}`, ready: () => accepts(port), serverConfig };
    });
    return {
      url: `https://127.0.0.1:${port}`,
      port,
      serverConfig,
      ...daemonInDir(daemon, work),
    };
  });
}
