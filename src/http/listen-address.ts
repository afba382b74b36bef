/** Where a server listens: a TCP `HOST:PORT` (an empty host is every address) or `unix:PATH`. */
export type ListenTarget = { socket: string } | HostPort;
export interface HostPort {
  host: string;
  port: number;
}

export function parseListen(listen: string): ListenTarget {
  return listen.startsWith("unix:") ? { socket: listen.slice("unix:".length) } : parseHostPort(listen);
}

/** `HOST:PORT`, `[IPv6]:PORT` or `:PORT`; port 0 picks a free one. */
export function parseHostPort(text: string): HostPort {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535)
    throw new Error(`expected HOST:PORT (port 0-65535), e.g. 0.0.0.0:5000 or [::]:5000, got "${text}"`);
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port };
}
