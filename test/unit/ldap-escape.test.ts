import { EqualityFilter, FilterParser } from "ldapts";
import { describe, expect, it } from "vitest";
import { escapeFilterValue, firstRdnValue } from "../../src/auth/authn/ldap.js";

describe("escaping a value for an LDAP filter (RFC 4515)", () => {
  it.each([
    ["alice", "alice"],
    ["*", "\\2a"],
    ["(", "\\28"],
    [")", "\\29"],
    ["\\", "\\5c"],
    ["\0", "\\00"],
    ["*)(uid=*))(|(uid=*", "\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a"],
    ["a\\2a", "a\\5c2a"],
    ["renée", "renée"],
    ["o'brien=x,y&z|!~<>:$&", "o'brien=x,y&z|!~<>:$&"],
  ])("turns %j into %j", (value, escaped) => {
    expect(escapeFilterValue(value)).toBe(escaped);
  });

  it.each(["*", "*)(uid=*))(|(uid=*", "a\\b", "\\2a", "x)(objectClass=*", "\0admin", "zoë (ops)", "$&$1"])(
    "makes %j one equality assertion on exactly that value, never a wildcard or a second filter",
    (value) => {
      const filter = FilterParser.parseString(`(uid=${escapeFilterValue(value)})`);
      expect(filter).toBeInstanceOf(EqualityFilter);
      expect((filter as EqualityFilter).value).toBe(value);
    },
  );
});

describe("the name of a group from its DN", () => {
  it.each([
    ["cn=admins,ou=groups,dc=example,dc=org", "admins"],
    ["CN=Domain Admins,CN=Users,DC=corp,DC=example", "Domain Admins"],
    ["cn=Smith\\, John,ou=groups,dc=example,dc=org", "Smith, John"],
    ["cn=R\\C3\\A9seau,ou=groups,dc=example,dc=org", "Réseau"],
    ["cn=a\\2bb,ou=groups", "a+b"],
    ["cn=ops+ou=eu,ou=groups", "ops"],
    ["cn=équipe,dc=example", "équipe"],
  ])("reads %j as %j", (dn, name) => {
    expect(firstRdnValue(dn)).toBe(name);
  });

  it.each(["", "admins", "=x", "cn=,dc=example"])("finds no name in %j", (dn) => {
    expect(firstRdnValue(dn)).toBeUndefined();
  });
});
