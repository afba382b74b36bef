/**
 * The glob the config's rules are written in (a policy's account and repository, a retention rule's repository
 * and protected tags): `*` matches any run of characters, slashes included, `?` one character, and every
 * other character only itself. Below every layer, so the gateway's policy and the registry's retention read a
 * rule's glob alike.
 */
export function globToRegExp(glob: string): RegExp {
  let source = "";
  for (const char of glob) {
    if (char === "*") source += ".*";
    else if (char === "?") source += ".";
    else source += char.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}
