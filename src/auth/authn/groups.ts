/** The groups that list `user` among their members, from the config's `auth.groups` (htpasswd has none). */
export function groupsOf(groups: Readonly<Record<string, readonly string[]>>, user: string): string[] {
  return Object.entries(groups)
    .filter(([, members]) => members.includes(user))
    .map(([group]) => group);
}
