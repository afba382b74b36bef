import { BlockList, isIP } from "node:net";

/**
 * A set of addresses and CIDRs, e.g. trusted proxies or a policy's client range. IPv4-mapped IPv6
 * addresses (`::ffff:10.0.0.1`, as Node reports IPv4 peers on a dual-stack socket) match their IPv4 form.
 */
export function createAddressList(
  entries: readonly string[],
  setting: string,
): (address: string | undefined) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, prefix, extra] = entry.split("/");
    const family = isIP(address ?? "");
    const bits = prefix === undefined ? undefined : Number(prefix);
    if (
      !address ||
      family === 0 ||
      extra !== undefined ||
      (bits !== undefined && !(Number.isInteger(bits) && bits >= 0 && bits <= (family === 6 ? 128 : 32)))
    ) {
      throw new Error(`${setting}: "${entry}" is not an IP address or CIDR`);
    }
    const type = family === 6 ? "ipv6" : "ipv4";
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, bits, type);
  }
  return (candidate) => {
    if (!candidate) return false;
    const plain = candidate.startsWith("::ffff:") ? candidate.slice(7) : candidate;
    const family = isIP(plain);
    return family !== 0 && list.check(plain, family === 6 ? "ipv6" : "ipv4");
  };
}
