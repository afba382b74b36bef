import { groupsOf } from "../auth/authn/groups.js";
import { htpasswdPath } from "../auth/from-config.js";
import { checkUserName, hashPassword, readHtpasswd, writeHtpasswd } from "../auth/authn/htpasswd-file.js";
import { createAuditLog } from "../audit/audit-log.js";
import { adminActor } from "./admin-actor.js";
import { parseArgs } from "./args.js";
import { UsageError } from "./errors.js";
import { readNewPassword } from "./password-input.js";
import { commonFlags, configFromArgs } from "./config-args.js";

export const userUsage = "portcullis user add|passwd|rm|list [NAME]   (password from a prompt, or stdin)";

/** Manages the htpasswd users of the server that reads this config; a running server sees changes at once. */
export async function runUser(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags]);
  const [action, name, ...extra] = args.positionals;
  if (!action || extra.length > 0) throw new UsageError(`usage: ${userUsage}`);
  const config = await configFromArgs(args);
  const file = htpasswdPath(config);
  const users = await readHtpasswd(file);

  if (action === "list") {
    if (name) throw new UsageError("user list takes no name");
    for (const user of [...users.keys()].sort()) {
      const groups = groupsOf(config.auth.groups, user);
      process.stdout.write(groups.length ? `${user}\t${groups.join(",")}\n` : `${user}\n`);
    }
    return;
  }
  if (!name) throw new UsageError(`user ${action} needs a user name\nusage: ${userUsage}`);
  checkUserName(name);
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
}
