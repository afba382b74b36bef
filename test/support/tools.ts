import { accessSync, constants } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";

// Daemons live in sbin directories, which a non-login root shell may not have on PATH.
const EXTRA_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of `binary`, or undefined when it is not installed. */
export function findTool(binary: string): string | undefined {
  if (isAbsolute(binary)) return isExecutable(binary) ? binary : undefined;
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  return dirs.map((dir) => join(dir, binary)).find(isExecutable);
}

/**
 * The absolute path of `binary`; throws naming the Debian package that provides it when it is missing,
 * so a suite calling this in beforeAll fails with a message that says what to install.
 */
export function requireTool(binary: string, debianPackage: string): string {
  const path = findTool(binary);
  if (path === undefined) {
    throw new Error(
      `${binary} is not installed: install the Debian package ${debianPackage} ` +
        `(apt-get install ${debianPackage}, or run test/setup/install-tools.sh)`,
    );
  }
  return path;
}
