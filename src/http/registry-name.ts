const label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const registryNameGrammar = new RegExp(`^(?:${label}(?:\\.${label})*|\\[[0-9A-Fa-f:.]+\\])(?::\\d{1,5})?$`);

/** `HOST[:PORT]` as docker names a registry: a DNS name, an IPv4 address or a bracketed IPv6 address. */
export function isRegistryName(name: string): boolean {
  return name.length <= 261 && registryNameGrammar.test(name);
}
