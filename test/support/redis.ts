import { connect } from "node:net";
import { join } from "node:path";
import { spawnDaemon, waitUntil, type DaemonProcess } from "./daemon-process.js";
import { freePort } from "./free-port.js";
import { makeTempDir } from "./temp-dir.js";
import { requireTool } from "./tools.js";

export interface RedisServer {
  /** redis://127.0.0.1:PORT */
  url: string;
  log(): Promise<string>;
  stop(): Promise<void>;
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
  const work = await makeTempDir("redis-");
  let daemon: DaemonProcess | undefined;
  let port = 0;
  try {
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const started = spawnDaemon(
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
      try {
        const listening = port;
        await waitUntil(() => ping(listening), { what: `redis-server on 127.0.0.1:${port}`, daemon: started });
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
    url: `redis://127.0.0.1:${port}`,
    log: () => running.log(),
    async stop() {
      await running.stop();
      await work.stop();
    },
  };
}
