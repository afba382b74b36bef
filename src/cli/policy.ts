import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { groupsOf } from "../auth/authn/groups.js";
import type { Config } from "../config/schema.js";
import { policyFromConfig } from "../auth/from-config.js";
import { repositoryActions, isRepositoryAction } from "../auth/token/scope.js";
import type { PolicyAnswer } from "../gateway/policy-endpoint.js";
import { hasSwitch, listFlag, parseArgs, stringFlag } from "./args.js";
import { UsageError } from "./errors.js";
import { commonFlags, configFileUsed, adminConfigFromArgs } from "./config-args.js";
import { requestJson } from "./https-request.js";
import { missingState } from "./server-state.js";

const policyUsage = "portcullis policy check USER REPO [ACTION] [--group G]... [--ip ADDRESS] [--server URL] [--json]";

/** Says what a user may do to a repository under the configured policy, and which rule decided. */
export async function runPolicy(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags, "group", "ip", "server", "ca"], ["json"]);
  const [action, user, repository, wanted, ...extra] = args.positionals;
  if (action !== "check" || !user || !repository || extra.length > 0) throw new UsageError(`usage: ${policyUsage}`);
  if (wanted !== undefined && !isRepositoryAction(wanted))
    throw new UsageError(`ACTION must be one of ${repositoryActions.join(", ")}`);
  const config = await adminConfigFromArgs(args);
  const server = stringFlag(args, "server");
  const answer = server
    ? await askServer(server, user, repository, stringFlag(args, "ip"), stringFlag(args, "ca") ?? caFile(config.certs))
    : decideHere(args, config, user, repository);
  const allowed = answer.actions.length ? answer.actions.join(", ") : "nothing";
  const ok = wanted === undefined || answer.actions.includes(wanted);
  if (hasSwitch(args, "json")) {
    process.stdout.write(`${JSON.stringify({ ...answer, ...(wanted ? { asked: wanted, allowed: ok } : {}) })}\n`);
  } else {
    const who =
      user === "-" ? "anonymous" : `${user}${answer.groups.length ? ` (groups: ${answer.groups.join(", ")})` : ""}`;
    process.stdout.write(`${who} on ${repository}: ${allowed}\n  because ${answer.reason}\n`);
    if (wanted !== undefined) process.stdout.write(`${wanted}: ${ok ? "allowed" : "denied"}\n`);
  }
  if (!ok) process.exitCode = 1;
}

function decideHere(
  args: ReturnType<typeof parseArgs>,
  config: Readonly<Config>,
  user: string,
  repository: string,
): PolicyAnswer {
  // A policy read from the wrong directory answers for a server that is not there.
  if (!configFileUsed(args) && !existsSync(config.certs))
    throw missingState("neither portcullis.yaml nor the certs directory", config.certs, "--certs DIR");
  const { policy } = policyFromConfig(config);
  const anonymous = user === "-";
  const groups = [...new Set([...(anonymous ? [] : groupsOf(config.auth.groups, user)), ...listFlag(args, "group")])];
  const clientIp = stringFlag(args, "ip") ?? "127.0.0.1";
  const decision = policy.decide({ account: anonymous ? undefined : user, groups, clientIp }, repository);
  const reason = `${decision.reason}${config.policies ? "" : " (the default policy: no policies are configured)"}`;
  return { user, groups, repository, clientIp, ...decision, reason };
}

async function askServer(
  server: string,
  user: string,
  repository: string,
  ip: string | undefined,
  ca: string | undefined,
): Promise<PolicyAnswer> {
  const username = process.env.PORTCULLIS_USERNAME;
  const password = process.env.PORTCULLIS_PASSWORD;
  if (!username || !password)
    throw new UsageError("--server needs credentials: set PORTCULLIS_USERNAME and PORTCULLIS_PASSWORD");
  const url = new URL("/policy/check", server);
  url.search = new URLSearchParams({ user, repository, ...(ip ? { ip } : {}) }).toString();
  const { status, body } = await requestJson(url, {
    ca: ca ? await readFile(ca, "utf8") : undefined,
    headers: { Authorization: `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}` },
  });
  if (status !== 200) {
    const reason = (body as { error?: string } | undefined)?.error ?? `HTTP ${status}`;
    throw new Error(`${url.origin} did not answer the policy question: ${reason}`);
  }
  return body as PolicyAnswer;
}

function caFile(certs: string): string | undefined {
  const path = join(certs, "ca.crt");
  return existsSync(path) ? path : undefined;
}
