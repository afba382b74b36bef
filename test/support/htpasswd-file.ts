import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { runCommand } from "./command.js";
import { requireTool } from "./tools.js";

/** An htpasswd file as Apache's `htpasswd -B` writes it ($2y$ bcrypt), the form docker-registry reads. */
export async function writeHtpasswdFile(path: string, users: Record<string, string>): Promise<string> {
  const htpasswd = requireTool("htpasswd", "apache2-utils");
  await mkdir(dirname(path), { recursive: true });
  let first = true;
  for (const [user, password] of Object.entries(users)) {
    await runCommand(htpasswd, [first ? "-cbB" : "-bB", path, user, password]);
    first = false;
  }
  return path;
}
