import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export type Credentials = { username: string; password: string } | { identityToken: string };

/**
 * Who `--server` commands act as: PORTCULLIS_USERNAME/PASSWORD, else the login docker or podman already
 * stored for the server's host (docker's `auths`, podman's auth.json or REGISTRY_AUTH_FILE).
 */
export function findCredentials(host: string, env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  if (env.PORTCULLIS_USERNAME && env.PORTCULLIS_PASSWORD) {
    return { username: env.PORTCULLIS_USERNAME, password: env.PORTCULLIS_PASSWORD };
  }
  const files = [
    env.REGISTRY_AUTH_FILE,
    env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, "containers", "auth.json") : undefined,
    join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), ".docker"), "config.json"),
  ];
  for (const file of files) {
    if (!file || !existsSync(file)) continue;
    const found = fromAuthFile(file, host);
    if (found) return found;
  }
  return undefined;
}

function fromAuthFile(file: string, host: string): Credentials | undefined {
  let json: { auths?: Record<string, { auth?: string; identitytoken?: string }> };
  try {
    json = JSON.parse(readFileSync(file, "utf8")) as typeof json;
  } catch {
    return undefined;
  }
  const entry = json.auths?.[host] ?? json.auths?.[`https://${host}`];
  if (!entry) return undefined;
  if (entry.identitytoken) return { identityToken: entry.identitytoken };
  if (!entry.auth) return undefined;
  const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
