import { randomBytes, randomInt } from "node:crypto";
import { runCommand, type CommandOptions, type CommandResult } from "./command.js";
import { requireTool } from "./tools.js";

export interface VethNamespace {
  /** The namespace's name under /var/run/netns. */
  name: string;
  /** /var/run/netns/NAME, what `nsenter --net=` takes. */
  path: string;
  /** The host end of the veth pair, in the host's namespace: 198.18.X.1. */
  hostAddress: string;
  /** The end inside the namespace: 198.18.X.2. */
  namespaceAddress: string;
  /** Runs a program with its network namespace switched to this one (nothing else changes). */
  run(file: string, args: readonly string[], options?: CommandOptions): Promise<CommandResult>;
  stop(): Promise<void>;
}

async function hostHasAddressIn(prefix: string): Promise<boolean> {
  const { stdout } = await runCommand(requireTool("ip", "iproute2"), ["-o", "-4", "address", "show"]);
  return stdout.includes(` ${prefix}`);
}

/**
 * A network namespace of its own joined to the host by a veth pair, 198.18.X.1/30 on the host side and
 * 198.18.X.2/30 inside, with X picked at random among the /24s of 198.18.0.0/16 (in RFC 2544's
 * benchmarking range) that no interface of this machine uses yet. Nothing is routed beyond the pair: a client in the
 * namespace can reach the host address and nothing else.
 * Programs enter it with `nsenter --net=`, never `ip netns exec`, which also remounts /sys (dockerd then
 * fails with "Devices cgroup isn't mounted").
 */
export async function createVethNamespace(): Promise<VethNamespace> {
  const ip = requireTool("ip", "iproute2");
  const nsenter = requireTool("nsenter", "util-linux");
  const id = randomBytes(4).toString("hex");
  const name = `pc-${id}`;
  // Interface names are at most 15 bytes.
  const hostSide = `pc${id}h`;
  const namespaceSide = `pc${id}n`;
  let subnet: string | undefined;
  for (let attempt = 0; attempt < 20 && subnet === undefined; attempt++) {
    const candidate = `198.18.${randomInt(256)}.`;
    if (!(await hostHasAddressIn(candidate))) subnet = candidate;
  }
  if (subnet === undefined) throw new Error("found no free /24 in 198.18.0.0/16 for a veth pair");
  const hostAddress = `${subnet}1`;
  const namespaceAddress = `${subnet}2`;

  async function stop(): Promise<void> {
    // Deleting either end deletes the pair; deleting the namespace deletes the end inside it.
    await runCommand(ip, ["link", "delete", hostSide]).catch(() => undefined);
    await runCommand(ip, ["netns", "delete", name]).catch(() => undefined);
  }

  try {
    await runCommand(ip, ["netns", "add", name]);
    await runCommand(ip, ["link", "add", hostSide, "type", "veth", "peer", "name", namespaceSide, "netns", name]);
    await runCommand(ip, ["address", "add", `${hostAddress}/30`, "dev", hostSide]);
    await runCommand(ip, ["link", "set", hostSide, "up"]);
    await runCommand(ip, ["-n", name, "address", "add", `${namespaceAddress}/30`, "dev", namespaceSide]);
    await runCommand(ip, ["-n", name, "link", "set", namespaceSide, "up"]);
    await runCommand(ip, ["-n", name, "link", "set", "lo", "up"]);
  } catch (error) {
    await stop();
    throw error;
  }

  const path = `/var/run/netns/${name}`;
  return {
    name,
    path,
    hostAddress,
    namespaceAddress,
    run: (file, args, options) => runCommand(nsenter, [`--net=${path}`, file, ...args], options),
    stop,
  };
}
