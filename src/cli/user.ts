import { rm } from "node:fs/promises";
import { join } from "node:path";
import { groupsOf } from "../auth/authn/groups.js";
import { htpasswdPath } from "../auth/from-config.js";
import {
  checkUserName,
  hashPassword,
  readHtpasswd,
  verifyPassword,
  writeHtpasswd,
} from "../auth/authn/htpasswd-file.js";
import { createAuditLog } from "../audit/audit-log.js";
import { readIfExists } from "../fs/read-if-exists.js";
import { adminActor } from "./admin-actor.js";
import { hasSwitch, parseArgs } from "./args.js";
import { UsageError } from "./errors.js";
import { readNewPassword } from "./password-input.js";
import { commonFlags, adminConfigFromArgs } from "./config-args.js";
import { requireExisting } from "./server-state.js";
import { writeLines } from "./output.js";

const userUsage = "portcullis user add|passwd|rm NAME | user list [--json]   (password from a prompt, or stdin)";

/** Manages the htpasswd users of the server that reads this config; a running server sees changes at once. */
export async function runUser(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags], ["json"]);
  const [action, name, ...extra] = args.positionals;
  if (!action || extra.length > 0) throw new UsageError(`usage: ${userUsage}`);
  const config = await adminConfigFromArgs(args);
  const file = htpasswdPath(config);
  if (action === "add") requireExisting(config.certs, "the certs directory", "--certs DIR");
  else requireExisting(file, "the htpasswd file", "--certs DIR");
  const users = await readHtpasswd(file);

  if (action === "list") {
    if (name) throw new UsageError("user list takes no name");
    const sorted = [...users.keys()].sort();
    const groups = (user: string) => groupsOf(config.auth.groups, user);
    if (hasSwitch(args, "json")) writeLines(sorted.map((user) => JSON.stringify({ user, groups: groups(user) })));
    else writeLines(sorted.map((user) => (groups(user).length ? `${user}\t${groups(user).join(",")}` : user)));
    return;
  }
  if (!name) throw new UsageError(`user ${action} needs a user name\nusage: ${userUsage}`);
  checkUserName(name);
  const before = users.get(name)?.hash;
  switch (action) {
    case "add":
      if (users.has(name))
        throw new UsageError(
          `user "${name}" already exists: use "portcullis user passwd ${name}" to change the password`,
        );
      users.set(name, { user: name, hash: await hashPassword(await readNewPassword()) });
      break;
    case "passwd":
      if (!users.has(name)) throw new UsageError(`no user "${name}": use "portcullis user add ${name}"`);
      users.set(name, { user: name, hash: await hashPassword(await readNewPassword()) });
      break;
    case "rm":
      if (!users.delete(name)) throw new UsageError(`no user "${name}"`);
      break;
    default:
      throw new UsageError(`unknown user action "${action}"\nusage: ${userUsage}`);
  }
  await writeHtpasswd(file, users.values());
  const audit = createAuditLog({ dataDir: config.data });
  audit.record({
    action: `user.${action}` as "user.add" | "user.passwd" | "user.rm",
    result: "success",
    actor: adminActor(),
    target: { user: name },
  });
  audit.close();
  process.stdout.write(
    `${action === "rm" ? "removed" : action === "add" ? "added" : "changed the password of"} ${name} in ${file}\n`,
  );
  if (before) await dropStalePasswordFile(join(config.certs, "admin-password"), before);
}

/**
 * The first start writes the generated admin password to a file; once that password is changed or its user
 * removed, the file only misleads (and still holds a secret), so it goes.
 */
async function dropStalePasswordFile(path: string, oldHash: string): Promise<void> {
  const saved = (await readIfExists(path))?.trim();
  if (!saved || !(await verifyPassword(saved, oldHash))) return;
  await rm(path, { force: true });
  process.stdout.write(`removed ${path}: it held the old password\n`);
}
