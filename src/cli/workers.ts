import cluster, { type Worker } from "node:cluster";
import type { Logger } from "../log.js";

export interface Workers {
  /** The port every worker serves on. */
  port: number;
  close(): Promise<void>;
}

const stopGraceMs = 10_000;

/**
 * Forks `count` cluster workers (each runs `serve` again and serves on the shared listening port) and waits
 * until all of them listen. A worker that dies later is replaced; one that dies before it listens fails the
 * start, since its siblings would fail the same way.
 */
export async function startWorkers(count: number, logger: Logger): Promise<Workers> {
  let stopping = false;

  function fork(): Promise<number> {
    const worker = cluster.fork();
    return new Promise<number>((resolve, reject) => {
      let listening = false;
      worker.on("message", (message: { type?: string; port?: number }) => {
        if (message?.type !== "listening" || typeof message.port !== "number") return;
        listening = true;
        resolve(message.port);
      });
      worker.once("exit", (code, signal) => {
        if (!listening) return reject(new Error(`a server process exited before it listened (${signal ?? code})`));
        if (stopping) return;
        logger.error({ pid: worker.process.pid, code, signal }, "a server process died; starting another");
        fork().catch((error: unknown) => logger.error({ err: error }, "could not replace a server process"));
      });
    });
  }

  let port: number | undefined;
  try {
    [port] = await Promise.all(Array.from({ length: Math.max(1, count) }, fork));
  } catch (error) {
    stopping = true;
    await stopAll();
    throw error;
  }

  async function stopAll(): Promise<void> {
    const running = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
    await Promise.all(running.map(stopOne));
  }

  return {
    port: port as number,
    async close() {
      stopping = true;
      await stopAll();
    },
  };
}

function stopOne(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    const kill = setTimeout(() => worker.process.kill("SIGKILL"), stopGraceMs);
    worker.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    if (worker.isConnected()) worker.send({ type: "stop" });
    else worker.process.kill("SIGKILL");
  });
}
