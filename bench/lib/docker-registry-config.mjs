import { randomBytes } from "node:crypto";

/**
 * A config.yml for docker-registry: filesystem storage in `root`, listening on 127.0.0.1:`port`, quiet logs;
 * with `tls` ({ cert, key }) it serves HTTPS itself, with `htpasswd` (a file) it asks for Basic credentials.
 */
export function dockerRegistryConfig(root, port, { tls, htpasswd } = {}) {
  return [
    "version: 0.1",
    "log:",
    "  level: error",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${JSON.stringify(root)}`,
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    ...(htpasswd ? ["auth:", "  htpasswd:", "    realm: bench", `    path: ${JSON.stringify(htpasswd)}`] : []),
    "http:",
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString("hex")}`,
    ...(tls ? ["  tls:", `    certificate: ${JSON.stringify(tls.cert)}`, `    key: ${JSON.stringify(tls.key)}`] : []),
    "",
  ].join("\n");
}
