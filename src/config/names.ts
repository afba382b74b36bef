import { isIP } from "node:net";

const label = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/**
 * Why `name` cannot go into a certificate as a DNS name or IP address (`tls.names`, `ca renew --name`),
 * or undefined when it can. A URL, a port or a space is the usual mistake, and is named as such.
 */
export function checkHostName(name: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(name)) return "expected a DNS name or an IP address, not a URL (drop the scheme)";
  const bare = name.replace(/^\[(.*)\]$/, "$1");
  if (isIP(bare) !== 0) return undefined;
  if (/:\d+$/.test(name)) return "expected a DNS name or an IP address, without a port";
  const labels = name.replace(/\.$/, "").split(".");
  const wildcard = labels[0] === "*" && labels.length > 2;
  if (name.length <= 253 && labels.every((l, i) => (i === 0 && wildcard) || label.test(l))) return undefined;
  return "expected a DNS name (letters, digits, hyphens, dots) or an IP address";
}
