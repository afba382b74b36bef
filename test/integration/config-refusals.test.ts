import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPortcullis, treeOf } from "../support/cli-run.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

let dir: TempDir;
beforeAll(async () => {
  dir = await makeTempDir("portcullis-refusals-");
});
afterAll(async () => {
  await dir.stop();
});

const groupAndAnonymous = `auth: { anonymous: true }
policies:
  - { group: admins, anonymous: true, repository: "*", actions: [pull] }
`;
const ldap = (extra: string) => `auth:
  ldap: { url: ldaps://ldap.example, userBase: "ou=people,dc=example", ${extra} }
`;

// [what, config file, extra environment, the key the message must name, what it must say]
const misconfigurations: [string, string, Record<string, string>, string, RegExp][] = [
  [
    "a CIDR with a prefix too long",
    'policies:\n  - { clientIp: "10.0.0.0/99", repository: "*", actions: [pull] }\n',
    {},
    "policies[0].clientIp",
    /expected an IP address or CIDR/,
  ],
  ["a trusted proxy that is no address", "trustedProxies: [proxy.example]\n", {}, "trustedProxies[0]", /IP address/],
  ["a URL among tls.names", 'tls: { names: ["https://reg.example:5000"] }\n', {}, "tls.names[0]", /not a URL/],
  ["a name with a space", 'tls: { names: [reg.example, "bad name!"] }\n', {}, "tls.names[1]", /expected a DNS name/],
  ["a publicUrl that is not https", "publicUrl: ftp://x\n", {}, "publicUrl", /expected https:\/\//],
  ["a plain-HTTP publicUrl", "publicUrl: http://reg.example\n", {}, "publicUrl", /expected https:\/\//],
  ["a rule for a group and anonymous callers", groupAndAnonymous, {}, "policies[0].group", /can never match/],
  [
    "an anonymous rule while anonymous callers get no tokens",
    'policies:\n  - { anonymous: true, repository: "library/*", actions: [pull] }\n',
    {},
    "policies[0].anonymous",
    /can never match: auth.anonymous is false/,
  ],
  [
    "a group nobody defined",
    'policies:\n  - { group: admisn, repository: "*", actions: ["*"] }\n',
    {},
    "policies[0].group",
    /no group "admisn" in auth.groups \(defined: admins\)/,
  ],
  ["an unknown PORTCULLIS_* variable", "", { PORTCULLIS_FOO_BAR: "1" }, "PORTCULLIS_FOO_BAR", /no config key/],
  ["StartTLS on an ldaps:// URL", ldap("startTls: true"), {}, "auth.ldap.startTls", /already TLS/],
  ["an LDAP bind DN without a password", ldap('bindDn: "cn=svc"'), {}, "auth.ldap.bindPasswordEnv", /password/],
  [
    "an LDAP password variable that is not set",
    ldap('bindDn: "cn=svc", bindPasswordEnv: NO_SUCH_VARIABLE'),
    {},
    "auth.ldap.bindPasswordEnv",
    /NO_SUCH_VARIABLE, but that environment variable is not set/,
  ],
  [
    "both ways of finding LDAP groups",
    ldap('groupAttribute: memberOf, groupSearch: { base: "ou=groups" }'),
    {},
    "auth.ldap.groupSearch",
    /not both/,
  ],
  ["an LDAP filter that does not parse", ldap('userFilter: "(uid={username}"'), {}, "auth.ldap.userFilter", /RFC 4515/],
  ["a misspelt key", "tls: { nmes: [reg.example] }\n", {}, "tls.nmes", /unknown key/],
];

describe("a configuration mistake stops serve before it creates anything", () => {
  it.each(misconfigurations)(
    "refuses %s with exit 2, naming the file and the key",
    async (what, text, env, key, says) => {
      const home = join(dir.path, what.replace(/\W+/g, "-"));
      await writeFile(join(dir.path, `${what.replace(/\W+/g, "-")}.yaml`), text);
      const file = join(dir.path, `${what.replace(/\W+/g, "-")}.yaml`);
      const before = await treeOf(dir.path);
      const result = await runPortcullis(
        [
          "serve",
          "--config",
          file,
          "--listen",
          "127.0.0.1:0",
          "--data",
          join(home, "data"),
          "--certs",
          join(home, "certs"),
        ],
        { cwd: dir.path, env: { ...process.env, ...env } },
      );
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain(file);
      expect(result.stderr).toContain(key);
      expect(result.stderr).toMatch(says);
      expect(await treeOf(dir.path)).toEqual(before);
    },
  );

  it("says the same through config verify, and passes a good file", async () => {
    const bad = join(dir.path, "verify-bad.yaml");
    await writeFile(bad, "publicUrl: ftp://x\n");
    const refused = await runPortcullis(["config", "verify", bad]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("publicUrl: expected https://");
    const good = join(dir.path, "verify-good.yaml");
    await writeFile(good, 'tls: { names: [reg.example, 10.0.0.5, "::1"] }\npublicUrl: https://reg.example:5000\n');
    const accepted = await runPortcullis(["config", "verify", good]);
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(accepted.stdout).toContain(`ok: ${good}`);
  });
});
