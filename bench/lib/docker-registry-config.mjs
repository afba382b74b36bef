import { randomBytes } from "node:crypto";

/** A config.yml for docker-registry: filesystem storage in `root`, plain HTTP on 127.0.0.1:`port`, quiet logs. */
export function dockerRegistryConfig(root, port) {
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
    "http:",
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString("hex")}`,
    "",
  ].join("\n");
}
