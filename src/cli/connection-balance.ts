/**
 * Hand a new connection over only when this process holds this many more open connections than the peer.
 * A hand-over costs about as much CPU as the TLS handshake itself, so small differences, which short
 * connections (skopeo opens one per request) even out by themselves, are left alone.
 */
const handOverMargin = 4;
/** Open-connection counts go to the peers at most this often, and only when they changed. */
const reportEveryMs = 20;

/**
 * Which process serves a connection. Every server process accepts from the shared listening socket, and the
 * kernel gives each connection to whichever process asks first: one woken by a burst (a client opening 32
 * keep-alive connections at once) takes all of it, and the others idle as long as those connections live.
 * So each process counts its open connections and tells its peers, and one that holds `handOverMargin`
 * more than a peer hands the new connection to it. (Workers know only the first process as a peer: it hands
 * over to any worker, a worker only back to it.)
 */
export function createConnectionBalance(report: (open: number) => void) {
  let open = 0;
  let reported = 0;
  let timer: NodeJS.Timeout | undefined;
  const peers = new Map<number, number>();

  const scheduleReport = () => {
    timer ??= setTimeout(() => {
      timer = undefined;
      if (open === reported) return;
      reported = open;
      report(open);
    }, reportEveryMs).unref();
  };

  return {
    /** Counts `socket` as served here until it closes. */
    serving(socket: { once(event: "close", listener: () => void): unknown }): void {
      open += 1;
      scheduleReport();
      socket.once("close", () => {
        open -= 1;
        scheduleReport();
      });
    },

    /** This process's open connections. */
    open: () => open,

    /** A peer's open connections, as it last said. */
    peerReported(peer: number, count: number): void {
      peers.set(peer, count);
    },

    peerGone(peer: number): void {
      peers.delete(peer);
    },

    /**
     * The peer a new connection should go to, or undefined to serve it here. The peer is counted one more
     * until it reports again, so a burst is spread instead of all handed to the same peer.
     */
    handOverTo(): number | undefined {
      let least: number | undefined;
      let leastOpen = Infinity;
      for (const [peer, count] of peers) {
        if (count < leastOpen) [least, leastOpen] = [peer, count];
      }
      if (least === undefined || open < leastOpen + handOverMargin) return undefined;
      peers.set(least, leastOpen + 1);
      return least;
    },
  };
}

export type ConnectionBalance = ReturnType<typeof createConnectionBalance>;
