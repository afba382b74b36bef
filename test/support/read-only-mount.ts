import { mkdir } from "node:fs/promises";
import { runCommand } from "./command.js";
import { requireTool } from "./tools.js";

/**
 * An empty read-only tmpfs mounted at `dir` (as root): writes fail with EROFS even for root, which a
 * chmod cannot do. stop() unmounts it.
 */
export async function mountReadOnly(dir: string): Promise<{ stop(): Promise<void> }> {
  const mount = requireTool("mount", "mount");
  await mkdir(dir, { recursive: true });
  await runCommand(mount, ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir]);
  return { stop: async () => void (await runCommand(requireTool("umount", "mount"), [dir])) };
}
