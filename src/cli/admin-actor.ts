import { userInfo } from "node:os";

/** Who ran an admin command on the server host, for the audit log: the operating-system account. */
export function adminActor(): { name: string; source: string } {
  let name = process.env.SUDO_USER ?? "";
  if (!name) {
    try {
      name = userInfo().username;
    } catch {
      name = `uid ${process.getuid?.() ?? "?"}`;
    }
  }
  return { name, source: "cli" };
}
