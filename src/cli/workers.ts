import { fork, type ChildProcess } from "node:child_process";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import type { Logger } from "../log.js";
import { createConnectionBalance } from "./connection-balance.js";

/** The environment that makes `serve` a worker: its number, and the port whose connections it is handed. */
// Not PORTCULLIS_*: those are config keys, and an unknown one is refused.
export const workerEnv = { id: "_PORTCULLIS_WORKER_ID", port: "_PORTCULLIS_WORKER_PORT" } as const;

/** A connection handed over with the message; the peer's count of open connections. */
type Shared = { type: "connection" } | { type: "load"; open: number };
type ToWorker = { type: "listen" } | { type: "stop" } | Shared;
type FromWorker = { type: "ready" } | Shared;

/** The first process, as its workers name it among their peers (workers are numbered from 1). */
const firstProcess = 0;

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
  /** The listening socket itself, to send to a worker, which then accepts from it too. */
  server: Server;
  /** From now on, every connection this process accepts goes to `dispatch`; those that arrived before go first. */
  dispatchTo(dispatch: (socket: Socket) => void): void;
  close(): void;
}

/**
 * The listening socket the server processes share: each of them accepts from it, whichever is free first.
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
        server: listener,
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
 * Runs `count - 1` worker processes beside this one (each runs `serve` again, with `workerEnv` set); each
 * ready worker is sent `listener` once and accepts from it, as this process does (`here`). The kernel gives
 * a connection to whichever process accepts first, so a busy process leaves it to an idle one, and a
 * connection passes between processes only when the one that took it holds several more than another
 * (see `createConnectionBalance`: handing each over IPC cost more CPU than its TLS handshake). A worker
 * that dies is replaced; its connections die with it, the others go on, and those still waiting to
 * be accepted go to the others. Nothing a request needs is in one process's memory (see
 * `startPortcullis`), so any process can take any connection.
 */
export async function startWorkers(options: {
  count: number;
  listener: SharedListener;
  here: (socket: Socket) => void;
  logger: Logger;
}): Promise<Workers> {
  const { listener, here, logger } = options;
  const ready = new Map<number, ChildProcess>();
  // A worker being (re)started is not ready yet, and is stopped as soon as it is if the stop came first.
  const starting = new Set<ChildProcess>();
  let stopping = false;
  const balance = createConnectionBalance((open) => {
    for (const child of ready.values()) if (child.connected) child.send({ type: "load", open } satisfies ToWorker);
  });
  const serveHere = (socket: Socket) => {
    balance.serving(socket);
    here(socket);
  };
  // Connections on their way to a worker. Node holds back a send until the one before it is acknowledged,
  // and a worker that dies meanwhile answers none of them: those left here are served by this process.
  const handing = new Map<number, Set<Socket>>();
  const handOver = (id: number, worker: ChildProcess, socket: Socket) => {
    const sending = handing.get(id) ?? new Set<Socket>();
    handing.set(id, sending.add(socket));
    worker.send({ type: "connection" } satisfies ToWorker, socket, (error) => {
      if (sending.delete(socket) && error) reclaim(socket, serveHere);
    });
  };

  function start(id: number): Promise<void> {
    const child = fork(process.argv[1] as string, process.argv.slice(2), {
      env: { ...process.env, [workerEnv.id]: String(id), [workerEnv.port]: String(listener.port) },
      execArgv: [...process.execArgv.filter((flag) => !flag.startsWith(semiSpaceFlag)), `${semiSpaceFlag}=4`],
      stdio: "inherit",
    });
    starting.add(child);
    return new Promise((resolve, reject) => {
      child.on("message", (message: FromWorker, handed?: Socket) => {
        if (message?.type === "load") balance.peerReported(id, message.open);
        if (message?.type === "connection" && handed) serveHere(handed);
        if (message?.type !== "ready") return;
        starting.delete(child);
        // stopAll is already waiting for its exit; the stop it sent may have come before the worker listened.
        if (stopping) {
          if (child.connected) child.send({ type: "stop" } satisfies ToWorker);
          return resolve();
        }
        ready.set(id, child);
        balance.peerReported(id, 0);
        child.send({ type: "listen" } satisfies ToWorker, listener.server);
        // This process reports only when its count changes: a worker restarted under steady load needs it now.
        child.send({ type: "load", open: balance.open() } satisfies ToWorker);
        resolve();
      });
      child.once("exit", (code, signal) => {
        starting.delete(child);
        balance.peerGone(id);
        for (const socket of handing.get(id) ?? []) reclaim(socket, serveHere);
        handing.delete(id);
        const wasReady = ready.delete(id);
        if (stopping) return resolve();
        if (!wasReady) return reject(new Error(`server process ${id} exited before it was ready (${signal ?? code})`));
        logger.error({ worker: id, code, signal }, "a server process died; starting another");
        start(id).catch((error: unknown) =>
          logger.error({ err: error, worker: id }, "could not restart a server process"),
        );
      });
    });
  }

  listener.dispatchTo((socket) => {
    const to = balance.handOverTo();
    const worker = to === undefined ? undefined : ready.get(to);
    if (!worker?.connected) {
      socket.resume();
      return serveHere(socket);
    }
    handOver(to as number, worker, socket);
  });

  try {
    await Promise.all(Array.from({ length: Math.max(0, options.count - 1) }, (_, i) => start(i + 1)));
  } catch (error) {
    stopping = true;
    await stopAll();
    throw error;
  }

  async function stopAll(): Promise<void> {
    await Promise.all([...ready.values(), ...starting].map(stopOne));
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

/**
 * Serves a connection whose hand-over failed, if this process still holds it: a send takes the socket's
 * handle out at once, and one that fails after that leaves nothing here to serve.
 */
function reclaim(socket: Socket, serve: (socket: Socket) => void): void {
  if (socket.destroyed) return;
  if ((socket as Socket & { _handle: unknown })._handle == null) return void socket.destroy();
  socket.resume();
  serve(socket);
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

/**
 * In a worker: accepts from the listening socket the first process sends, until it says stop or goes away;
 * a stopping worker stops accepting first, so the connections still waiting go to the other processes.
 */
export function serveHandedConnections(accept: (socket: Socket) => void, close: () => Promise<void>): void {
  let shared: Server | undefined;
  const stop = () => {
    shared?.close();
    void close().finally(() => process.exit(0));
  };
  const balance = createConnectionBalance((open) => {
    if (process.connected) process.send?.({ type: "load", open } satisfies FromWorker);
  });
  const serve = (socket: Socket) => {
    balance.serving(socket);
    accept(socket);
  };
  // Connections start unread, so one can still be handed over whole; a worker hands over only to the first
  // process, which received ones are never passed on from (they are already being read).
  const acceptedHere = (socket: Socket) => {
    if (balance.handOverTo() === firstProcess && process.connected) {
      process.send?.({ type: "connection" } satisfies FromWorker, socket, undefined, (error) => {
        if (error) reclaim(socket, serve);
      });
      return;
    }
    socket.resume();
    serve(socket);
  };
  process.on("message", (message: ToWorker, handle?: Server | Socket) => {
    if (message?.type === "listen" && handle) {
      shared = handle as Server;
      // net.Server reads this at every connection; the one rebuilt from the handle sent here was made without it.
      (shared as Server & { pauseOnConnect: boolean }).pauseOnConnect = true;
      shared.on("connection", acceptedHere);
      balance.peerReported(firstProcess, 0);
    }
    if (message?.type === "connection" && handle) serve(handle as Socket);
    if (message?.type === "load") balance.peerReported(firstProcess, message.open);
    if (message?.type === "stop") stop();
  });
  // Without the first process there is no one to restart anything: end with it.
  process.on("disconnect", stop);
  // A signal sent to the whole process group is the first process's to handle: it stops its workers.
  process.on("SIGINT", () => undefined);
  process.on("SIGTERM", () => undefined);
  // The first process went away while this one was starting: its disconnect came before anyone listened.
  if (!process.connected) return stop();
  process.send?.({ type: "ready" } satisfies FromWorker);
}
