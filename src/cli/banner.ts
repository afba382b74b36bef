import { isIP } from "node:net";
import { bootstrapCommand } from "../gateway/install-script.js";

export interface BannerInput {
  port: number;
  /** The address the gateway listens on; a wildcard means every name in `names` it can be reached by. */
  listenHost: string;
  /** Names and addresses the certificate covers. */
  names: readonly string[];
  caCertPem?: string;
  caFingerprint?: string;
  upstream: string;
  actions: readonly string[];
  warnings: readonly string[];
  /** The `--config`/`--data`/`--certs` flags serve was started with, for the admin commands the banner suggests. */
  hintFlags?: readonly string[];
}

const loopback = new Set(["localhost", "127.0.0.1", "::1"]);

/** `HOST:PORT` as docker names a registry (and its certs.d directory); port 443 is left out, as docker does. */
export function registryName(host: string, port: number): string {
  const shown = isIP(host) === 6 ? `[${host}]` : host;
  return port === 443 ? shown : `${shown}:${port}`;
}

/** What the console shows at start: where we are, which CA to trust, and how a client gets it safely. */
export function startBanner(input: BannerInput): string {
  return banner(input, "Portcullis is serving HTTPS on:");
}

/** The same for `ca show`, which cannot know whether a server is running: where clients reach it. */
export function reachBanner(input: BannerInput): string {
  return banner(input, "Clients reach this server at:");
}

function banner(input: BannerInput, heading: string): string {
  const wildcard = input.listenHost === "0.0.0.0" || input.listenHost === "::";
  // 0.0.0.0 takes IPv4 connections only, so its IPv6 addresses are no way in; `::` takes both.
  const reachable = (n: string) => input.listenHost !== "0.0.0.0" || isIP(n) !== 6;
  const external = input.names.filter((n) => !loopback.has(n) && reachable(n));
  const shown = !wildcard ? [input.listenHost] : external.length > 0 ? external : ["localhost"];
  const lines: string[] = [];
  for (const action of input.actions) lines.push(`  ${action}`);
  for (const warning of input.warnings) lines.push(`  warning: ${warning}`);
  lines.push("", heading);
  for (const name of shown) lines.push(`  https://${registryName(name, input.port)}/  (CA and instructions at /ca)`);
  lines.push(`  registry: ${input.upstream}`);
  if (input.caCertPem && input.caFingerprint) {
    lines.push(
      "",
      `CA SHA-256 fingerprint: ${input.caFingerprint}`,
      "",
      "To trust this registry on a client machine, run there (the checksum guards the download):",
    );
    for (const name of shown) lines.push(`  ${bootstrapCommand(input.caCertPem, registryName(name, input.port))}`);
  }
  if (input.hintFlags !== undefined) {
    const flags = input.hintFlags.length ? ` ${input.hintFlags.join(" ")}` : "";
    lines.push("", "On this host, manage it with (the same flags as this server):");
    lines.push(`  portcullis user add NAME${flags}`, `  portcullis doctor${flags}`);
  }
  return `${lines.join("\n")}\n`;
}
