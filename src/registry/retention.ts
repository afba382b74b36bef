import { globToRegExp } from "../glob.js";
import type { Inventory } from "./inventory.js";
import type { StorageDriver } from "./storage/driver.js";
import { layout } from "./storage/layout.js";

/** One rule of `retention` in the config (its schema lives there). */
export interface RetentionRule {
  repository: string;
  keepNewest?: number;
  keepPulledWithinDays?: number;
  removeUntagged: boolean;
  protect: readonly string[];
}

export interface RetentionRemoval {
  repository: string;
  tag: string;
  digest?: string;
  /** The rule that caused the removal, as the config spells it. */
  rule: string;
  pushedAt?: string;
}

const dayMs = 24 * 60 * 60 * 1000;

/**
 * Applies retention rules: for each repository the first rule whose glob matches decides. A tag stays when
 * it matches a `protect` glob, is among the `keepNewest` newest unprotected tags by push time (the audit log's,
 * else the tag link's modification time), or was pulled within `keepPulledWithinDays`. A rule with no keep
 * condition removes no tag (it may still remove untagged manifests, through gc).
 */
export function createRetention(deps: { storage: StorageDriver; inventory: Inventory; now?: () => number }) {
  const now = deps.now ?? Date.now;

  const ruleFor = (rules: readonly RetentionRule[], repository: string) =>
    rules.find((r) => globToRegExp(r.repository).test(repository));

  async function plan(rules: readonly RetentionRule[]): Promise<RetentionRemoval[]> {
    const removals: RetentionRemoval[] = [];
    const activity = deps.inventory.activity();
    for (const repository of await deps.inventory.repositories()) {
      const rule = ruleFor(rules, repository);
      if (!rule || (rule.keepNewest === undefined && rule.keepPulledWithinDays === undefined)) continue;
      const protect = rule.protect.map(globToRegExp);
      const tags = [];
      for (const tag of await deps.inventory.tagNames(repository)) {
        if (protect.some((p) => p.test(tag))) continue;
        const seen = activity.tags.get(`${repository}\n${tag}`);
        const linkTime = (await deps.storage.stat(layout.tagCurrentLink(repository, tag)))?.modified.getTime();
        if (linkTime === undefined) continue;
        const pushed = seen?.pushedAt ? Date.parse(seen.pushedAt) : linkTime;
        const pulled = seen?.pulledAt ? Date.parse(seen.pulledAt) : undefined;
        tags.push({ tag, pushed, pulled, pushedAt: new Date(pushed).toISOString() });
      }
      tags.sort((a, b) => b.pushed - a.pushed || (a.tag < b.tag ? 1 : -1));
      tags.forEach((entry, index) => {
        if (rule.keepNewest !== undefined && index < rule.keepNewest) return;
        const days = rule.keepPulledWithinDays;
        if (days !== undefined && entry.pulled !== undefined && now() - entry.pulled <= days * dayMs) return;
        removals.push({ repository, tag: entry.tag, rule: describeRule(rule), pushedAt: entry.pushedAt });
      });
    }
    return removals;
  }

  return {
    plan,
    /** Whether gc should sweep manifests no tag reaches in this repository. */
    removesUntagged: (rules: readonly RetentionRule[], repository: string) =>
      ruleFor(rules, repository)?.removeUntagged ?? false,
    async apply(
      rules: readonly RetentionRule[],
      onRemoved: (removal: RetentionRemoval) => void,
    ): Promise<RetentionRemoval[]> {
      const removed: RetentionRemoval[] = [];
      for (const removal of await plan(rules)) {
        const image = await deps.inventory.image(removal.repository, removal.tag);
        if (!(await deps.inventory.removeTag(removal.repository, removal.tag))) continue;
        const done = { ...removal, ...(image ? { digest: image.digest } : {}) };
        removed.push(done);
        onRemoved(done);
      }
      return removed;
    },
  };
}

export function describeRule(rule: RetentionRule): string {
  const parts = [`repository ${rule.repository}`];
  if (rule.keepNewest !== undefined) parts.push(`keepNewest ${rule.keepNewest}`);
  if (rule.keepPulledWithinDays !== undefined) parts.push(`keepPulledWithinDays ${rule.keepPulledWithinDays}`);
  if (rule.protect.length > 0) parts.push(`protect ${rule.protect.join(",")}`);
  return parts.join(", ");
}
