import { waitUntil, type DaemonProcess } from "./daemon-process.js";
import { freePort } from "./free-port.js";

/** One try at starting a daemon on a port: the process, and how to tell it is ready. */
export interface PortLaunch {
  daemon: DaemonProcess;
  /** Names the daemon in the error when it never gets ready, e.g. `nginx on 127.0.0.1:PORT`. */
  what: string;
  ready(): Promise<boolean>;
}

const ATTEMPTS = 3;

/**
 * Starts a daemon on a port from freePort() and waits until it is ready. freePort() only says the port was
 * free a moment ago, so when the daemon's log says another process bound it first, `launch` is called again
 * with a new port (three tries in all). Resolves to the launch that came up, with its port.
 */
export async function startOnFreePort<Launch extends PortLaunch>(
  launch: (port: number, attempt: number) => Promise<Launch> | Launch,
): Promise<Launch & { port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const started = await launch(port, attempt);
    try {
      await waitUntil(() => started.ready(), { what: started.what, daemon: started.daemon });
      return { ...started, port };
    } catch (error) {
      await started.daemon.stop();
      const portTaken = /address already in use/i.test(await started.daemon.log());
      if (!portTaken || attempt >= ATTEMPTS) throw error;
    }
  }
}
