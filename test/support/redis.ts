import { connect } from "node:net";
import { join } from "node:path";
import { startOnFreePort } from "./daemon-on-free-port.js";
import { daemonInDir, spawnDaemon, type RunningDaemon } from "./daemon-process.js";
import { startInTempDir } from "./temp-dir.js";
import { requireTool } from "./tools.js";

export interface RedisServer extends RunningDaemon {
  /** redis://127.0.0.1:PORT */
  url: string;
}

/** Sends an inline PING and resolves true when the answer is +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let answer = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      answer += chunk.toString("latin1");
      if (answer.includes("\r\n")) done(answer.startsWith("+PONG"));
    });
  });
}

/**
 * A redis-server of the test's own on 127.0.0.1 (never the system instance): no persistence, its working
 * directory in a temp dir that stop() removes.
 */
export async function startRedis(): Promise<RedisServer> {
  const binary = requireTool("redis-server", "redis-server");
  return startInTempDir("redis-", async (work) => {
    const { daemon, port } = await startOnFreePort((port, attempt) => {
      const daemon = spawnDaemon(
        binary,
        [
          "--bind",
          "127.0.0.1",
          "--port",
          String(port),
          "--save",
          "",
          "--appendonly",
          "no",
          "--dir",
          work.path,
          "--daemonize",
          "no",
          "--logfile",
          "",
        ],
        { logPath: join(work.path, `redis-${attempt}.log`) },
      );
      return { daemon, what: `redis-server on 127.0.0.1:${port}`, ready: () => ping(port) };
    });
    return {
      url: `redis://127.0.0.1:${port}`,
      ...daemonInDir(daemon, work),
    };
  });
}
