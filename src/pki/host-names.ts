import { execFileSync } from "node:child_process";
import { hostname, networkInterfaces } from "node:os";

/**
 * Every name and address a client on the network might use to reach this machine: its host name and
 * FQDN, `localhost`, and each interface address (IPv6 link-local addresses are left out: they need a
 * zone, which no client puts in an image name).
 */
export function machineNames(): string[] {
  const names = new Set<string>(["localhost", "127.0.0.1", "::1"]);
  const short = hostname().toLowerCase();
  if (short) names.add(short);
  const fqdn = fullyQualifiedName();
  if (fqdn) names.add(fqdn);
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === "IPv6" && address.address.toLowerCase().startsWith("fe80:")) continue;
      names.add(address.address.toLowerCase());
    }
  }
  return [...names];
}

function fullyQualifiedName(): string | undefined {
  try {
    const name = execFileSync("hostname", ["-f"], { timeout: 2000, stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim()
      .toLowerCase();
    return /^[a-z0-9.-]+$/.test(name) && name.includes(".") ? name : undefined;
  } catch {
    return undefined;
  }
}
