import { fork, type ChildProcess } from "node:child_process";
import { createServer, type AddressInfo, type Socket } from "node:net";
import type { Logger } from "../log.js";

/** The environment that makes `serve` a worker: its number, and the port whose connections it is handed. */
// Not PORTCULLIS_*: those are config keys, and an unknown one is refused.
export const workerEnv = { id: "_PORTCULLIS_WORKER_ID", port: "_PORTCULLIS_WORKER_PORT" } as const;

type ToWorker = { type: "connection" } | { type: "stop" };
type FromWorker = { type: "ready" };

export interface Workers {
  /** Passes a signal on to every worker (SIGHUP: reload). */
  signal(name: NodeJS.Signals): void;
  close(): Promise<void>;
}

const stopGraceMs = 10_000;
/**
 * A young generation of at most 3 × 4 MiB instead of 3 × 16: every chunk of a layer in flight is garbage
 * soon after, and V8 otherwise lets it pile up to ~48 MiB per process before collecting (a 512 MiB push
 * peaked 23 MiB higher, and was no faster). The bin's shebang and `npm start` give the first process the same.
 */
const semiSpaceFlag = "--max-semi-space-size";

export interface SharedListener {
  port: number;
  /** From now on, every connection goes to `dispatch`; those that arrived before go first. */
  dispatchTo(dispatch: (socket: Socket) => void): void;
  close(): void;
}

/**
 * The listening socket the server processes share: it accepts, and hands each connection on unread.
 * Connections that arrive before anything serves them wait, instead of being accepted into nothing.
 */
export function listenShared(host: string, port: number): Promise<SharedListener> {
  const listener = createServer({ pauseOnConnect: true });
  const waiting: Socket[] = [];
  let dispatch: ((socket: Socket) => void) | undefined;
  listener.on("connection", (socket: Socket) => (dispatch ? dispatch(socket) : waiting.push(socket)));
  return new Promise((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(port, host, () => {
      listener.off("error", reject);
      resolve({
        port: (listener.address() as AddressInfo).port,
        dispatchTo(next) {
          dispatch = next;
          for (const socket of waiting.splice(0)) next(socket);
        },
        close: () => listener.close(),
      });
    });
  });
}

/**
 * Runs `count - 1` worker processes beside this one (each runs `serve` again, with `workerEnv` set) and
 * hands the connections of `listener` to this process (`here`) and the ready workers in turn. A worker
 * that dies is replaced; its connections die with it, the others go on. Nothing a request needs is in one
 * process's memory (see `startPortcullis`), so any process can take any connection.
 */
export async function startWorkers(options: {
  count: number;
  listener: SharedListener;
  here: (socket: Socket) => void;
  logger: Logger;
}): Promise<Workers> {
  const { listener, here, logger } = options;
  const ready = new Map<number, ChildProcess>();
  let stopping = false;
  let turn = 0;

  function start(id: number): Promise<void> {
    const child = fork(process.argv[1] as string, process.argv.slice(2), {
      env: { ...process.env, [workerEnv.id]: String(id), [workerEnv.port]: String(listener.port) },
      execArgv: [...process.execArgv.filter((flag) => !flag.startsWith(semiSpaceFlag)), `${semiSpaceFlag}=4`],
      stdio: "inherit",
    });
    return new Promise((resolve, reject) => {
      child.on("message", (message: FromWorker) => {
        if (message?.type !== "ready") return;
        ready.set(id, child);
        resolve();
      });
      child.once("exit", (code, signal) => {
        const wasReady = ready.delete(id);
        if (!wasReady) return reject(new Error(`server process ${id} exited before it was ready (${signal ?? code})`));
        if (stopping) return;
        logger.error({ worker: id, code, signal }, "a server process died; starting another");
        start(id).catch((error: unknown) =>
          logger.error({ err: error, worker: id }, "could not restart a server process"),
        );
      });
    });
  }

  // Until a worker is ready, this process serves every connection itself.
  listener.dispatchTo((socket) => {
    const targets = [...ready.values()];
    const target = turn++ % (targets.length + 1);
    const worker = targets[target - 1];
    if (!worker) {
      socket.resume();
      return here(socket);
    }
    worker.send({ type: "connection" } satisfies ToWorker, socket, (error) => {
      // The worker is gone between the turn and the send: this process serves the connection instead.
      if (error && !socket.destroyed) here(socket);
    });
  });

  try {
    await Promise.all(Array.from({ length: Math.max(0, options.count - 1) }, (_, i) => start(i + 1)));
  } catch (error) {
    stopping = true;
    await stopAll();
    throw error;
  }

  async function stopAll(): Promise<void> {
    await Promise.all([...ready.values()].map(stopOne));
  }

  return {
    signal(name) {
      for (const child of ready.values()) child.kill(name);
    },
    async close() {
      stopping = true;
      listener.close();
      await stopAll();
    },
  };
}

function stopOne(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill("SIGKILL"), stopGraceMs);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    if (child.connected) child.send({ type: "stop" } satisfies ToWorker);
    else child.kill("SIGKILL");
  });
}

/** In a worker: serves the connections the first process hands over, until it says stop or goes away. */
export function serveHandedConnections(accept: (socket: Socket) => void, close: () => Promise<void>): void {
  process.on("message", (message: ToWorker, socket?: Socket) => {
    if (message?.type === "connection" && socket) accept(socket);
    if (message?.type === "stop") void close().finally(() => process.exit(0));
  });
  // Without the first process there is no one to hand connections or restart anything: end with it.
  process.on("disconnect", () => void close().finally(() => process.exit(0)));
  // A signal sent to the whole process group is the first process's to handle: it stops its workers.
  process.on("SIGINT", () => undefined);
  process.on("SIGTERM", () => undefined);
  process.send?.({ type: "ready" } satisfies FromWorker);
}
