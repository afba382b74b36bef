import { globToRegExp } from "../../glob.js";
import { createAddressList } from "../../http/address-list.js";
import { repositoryActions, type RepositoryAction } from "../token/scope.js";

export type PolicyAction = RepositoryAction | "*";

/** One rule of the `policies` list in the config. Every matcher given must match; the first matching rule decides. */
export interface PolicyRule {
  /** Glob over the account name; matches authenticated callers only. */
  account?: string;
  /** A group the caller belongs to; authenticated callers only. */
  group?: string;
  /** Set to true for a rule about callers with no credentials; such rules match nobody else. */
  anonymous?: boolean;
  /** Glob over the repository name; `${account}` stands for the caller's name. */
  repository: string;
  /** Address or CIDR the request must come from. */
  clientIp?: string;
  actions: readonly PolicyAction[];
}

export interface Subject {
  /** Undefined for anonymous callers. */
  account?: string;
  groups: readonly string[];
  clientIp: string;
}

export interface Decision {
  actions: RepositoryAction[];
  /** Index of the rule that decided, or undefined when none matched (nothing is allowed). */
  ruleIndex?: number;
  reason: string;
}

/** The policy written nowhere: users pull and push everywhere, admins also delete, anonymous callers nothing. */
export function defaultRules(adminGroup: string): PolicyRule[] {
  return [
    { group: adminGroup, repository: "*", actions: ["*"] },
    { account: "*", repository: "*", actions: ["pull", "push"] },
  ];
}

/**
 * Ordered rules → the actions a subject may take on a repository, and which rule said so. `replace` swaps
 * the rules for every holder of this policy at once (a reload), so a decision never mixes two rule sets.
 */
export function createPolicy(rules: readonly PolicyRule[]) {
  let compiled = compile(rules);

  return {
    decide(subject: Subject, repository: string): Decision {
      for (const [index, { rule, account, addresses }] of compiled.entries()) {
        const anonymous = subject.account === undefined;
        if (rule.anonymous === true ? !anonymous : anonymous) continue;
        if (account && !account.test(subject.account ?? "")) continue;
        if (rule.group !== undefined && !subject.groups.includes(rule.group)) continue;
        if (addresses && !addresses(subject.clientIp)) continue;
        const pattern = rule.repository.replaceAll("${account}", escapeGlob(subject.account ?? ""));
        if (!globToRegExp(pattern).test(repository)) continue;
        const actions = rule.actions.includes("*")
          ? [...repositoryActions]
          : repositoryActions.filter((a) => rule.actions.includes(a));
        return { actions, ruleIndex: index, reason: `${ruleName(index)} (${describeRule(rule)}) matched` };
      }
      return { actions: [], reason: "no rule matched, so nothing is allowed" };
    },

    /** The rules decided with from now on; compiled first, so bad rules leave the current ones in place. */
    replace(next: readonly PolicyRule[]): void {
      compiled = compile(next);
    },
  };
}

/** How every message names a rule: by its place in the config's `policies` list. */
export function ruleName(index: number): string {
  return `policies[${index}]`;
}

function compile(rules: readonly PolicyRule[]) {
  return rules.map((rule, index) => ({
    rule,
    account: rule.account === undefined ? undefined : globToRegExp(rule.account),
    addresses:
      rule.clientIp === undefined ? undefined : createAddressList([rule.clientIp], `${ruleName(index)}.clientIp`),
  }));
}

export type Policy = ReturnType<typeof createPolicy>;

export function describeRule(rule: PolicyRule): string {
  const who = [
    rule.anonymous ? "anonymous" : undefined,
    rule.account !== undefined ? `account ${rule.account}` : undefined,
    rule.group !== undefined ? `group ${rule.group}` : undefined,
    rule.clientIp !== undefined ? `from ${rule.clientIp}` : undefined,
  ].filter(Boolean);
  return `${who.length ? who.join(", ") : "any signed-in user"} on ${rule.repository}: ${rule.actions.join(", ")}`;
}

function escapeGlob(text: string): string {
  return text.replace(/[*?]/g, "");
}
