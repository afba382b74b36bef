import { groupsOf } from "../auth/authn/groups.js";
import { policyFromConfig } from "../auth/from-config.js";
import { repositoryActions, isRepositoryAction } from "../auth/token/scope.js";
import { parseArgs, stringFlag } from "./args.js";
import { UsageError } from "./errors.js";
import { commonFlags, configFromArgs } from "./config-args.js";

export const policyUsage =
  "portcullis policy check USER REPO [ACTION] [--group G]... [--ip ADDRESS]   (USER - for anonymous)";

/** Says what a user may do to a repository under the configured policy, and which rule decided. */
export async function runPolicy(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags, "group", "ip"]);
  const [action, user, repository, wanted, ...extra] = args.positionals;
  if (action !== "check" || !user || !repository || extra.length > 0) throw new UsageError(`usage: ${policyUsage}`);
  if (wanted !== undefined && !isRepositoryAction(wanted))
    throw new UsageError(`ACTION must be one of ${repositoryActions.join(", ")}`);
  const config = await configFromArgs(args);
  const { policy, rules } = policyFromConfig(config);
  const anonymous = user === "-";
  const groups = [...new Set([...groupsOf(config.auth.groups, user), ...(args.flags.get("group") ?? [])])];
  const subject = { account: anonymous ? undefined : user, groups, clientIp: stringFlag(args, "ip") ?? "127.0.0.1" };
  const decision = policy.decide(subject, repository);
  const who = anonymous ? "anonymous" : `${user}${groups.length ? ` (groups: ${groups.join(", ")})` : ""}`;
  const allowed = decision.actions.length ? decision.actions.join(", ") : "nothing";
  process.stdout.write(
    `${who} on ${repository}: ${allowed}\n  because ${decision.reason}${config.policies ? "" : " (the default policy: no policies are configured)"}\n`,
  );
  if (decision.ruleIndex !== undefined) process.stdout.write(`  rule: ${JSON.stringify(rules[decision.ruleIndex])}\n`);
  if (wanted !== undefined) {
    const ok = (decision.actions as string[]).includes(wanted);
    process.stdout.write(`${wanted}: ${ok ? "allowed" : "denied"}\n`);
    if (!ok) process.exitCode = 1;
  }
}
