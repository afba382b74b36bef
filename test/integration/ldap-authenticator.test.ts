import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthenticatorUnavailable, CredentialsRejected, type Identity } from "../../src/auth/authn/authenticator.js";
import { createLdapAuthenticator, type LdapAuthenticator, type LdapSettings } from "../../src/auth/authn/ldap.js";
import { createLogger } from "../../src/log.js";
import { waitUntil } from "../support/daemon-process.js";
import { freePort } from "../support/free-port.js";
import { startSlapd, type Slapd } from "../support/slapd.js";
import { createTestCa } from "../support/test-ca.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

const INJECTION = "*)(uid=*))(|(uid=*";

let ldap: Slapd;
let dir: TempDir;
let wrongCaFile: string;
const opened: LdapAuthenticator[] = [];

beforeAll(async () => {
  ldap = await startSlapd({ tls: true });
  dir = await makeTempDir("ldap-authenticator-");
  wrongCaFile = (await createTestCa(join(dir.path, "wrong-ca"), "Not the LDAP server's CA")).certFile;
});

afterAll(async () => {
  await Promise.all(opened.map((authenticator) => authenticator.close()));
  await ldap?.stop();
  await dir?.stop();
});

function settings(overrides: Partial<LdapSettings> = {}): LdapSettings {
  return {
    url: ldap.url,
    bindDn: ldap.serviceDn,
    bindPassword: ldap.servicePassword,
    userBase: ldap.peopleDn,
    userFilter: "(&(objectClass=inetOrgPerson)(uid={username}))",
    groupAttribute: "memberOf",
    timeoutMs: 5_000,
    ...overrides,
  };
}

function authenticator(overrides: Partial<LdapSettings> = {}, logger = createLogger({ level: "silent" })) {
  const created = createLdapAuthenticator(settings(overrides), { logger });
  opened.push(created);
  return created;
}

function user(name: string) {
  const found = ldap.users[name];
  if (found === undefined) throw new Error(`the test directory has no user ${name}`);
  return found;
}

function expected(name: string): Identity {
  return { name, groups: [...user(name).groups].sort(), source: "ldap", credentialStamp: "" };
}

function sortedGroups(identity: Identity | undefined): Identity | undefined {
  return identity === undefined ? undefined : { ...identity, groups: [...identity.groups].sort() };
}

/** What authenticate settled with: the identity's name, "unknown", or the error's class name. */
async function outcome(promise: Promise<Identity | undefined>): Promise<string> {
  try {
    return (await promise)?.name ?? "unknown";
  } catch (error) {
    return (error as Error).name;
  }
}

/** A TCP server on 127.0.0.1 that accepts connections and never writes a byte. */
async function startSilentServer(): Promise<{ url: string; sockets: Set<Socket>; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    // Read (and drop) what the client sends, so its FIN is seen and the socket closes when the client's does.
    socket.resume();
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the silent server has no TCP address");
  return { url: `127.0.0.1:${address.port}`, sockets, server };
}

async function stopSilentServer(silent: { sockets: Set<Socket>; server: Server }): Promise<void> {
  for (const socket of silent.sockets) socket.destroy();
  await new Promise<void>((resolve) => silent.server.close(() => resolve()));
}

describe("authenticating against a real slapd", () => {
  it("accepts the right password and reports the user's groups read from memberOf", async () => {
    expect(sortedGroups(await authenticator().authenticate("alice", user("alice").password))).toEqual(
      expected("alice"),
    );
    expect(sortedGroups(await authenticator().authenticate("bob", user("bob").password))).toEqual(expected("bob"));
  });

  it("reports the same groups when they are found by a group search instead", async () => {
    const bySearch = authenticator({
      groupAttribute: undefined,
      groupSearch: { base: ldap.groupsDn, filter: "(&(objectClass=groupOfNames)(member={dn}))", nameAttribute: "cn" },
    });
    expect(sortedGroups(await bySearch.authenticate("alice", user("alice").password))).toEqual(expected("alice"));
    expect(sortedGroups(await bySearch.authenticate("bob", user("bob").password))).toEqual(expected("bob"));
  });

  it("gives a user who belongs to no group an empty group list", async () => {
    expect(await authenticator().authenticate("carol", user("carol").password)).toEqual(expected("carol"));
  });

  it("authenticates a user whose uid is not ASCII", async () => {
    expect(await authenticator().authenticate("renée", user("renée").password)).toEqual(expected("renée"));
  });

  it("searches anonymously when no service account is configured", async () => {
    const anonymous = authenticator({ bindDn: undefined, bindPassword: undefined });
    expect(sortedGroups(await anonymous.authenticate("alice", user("alice").password))).toEqual(expected("alice"));
  });

  it("rejects a wrong password, including another user's", async () => {
    await expect(authenticator().authenticate("alice", "not-her-password")).rejects.toBeInstanceOf(CredentialsRejected);
    await expect(authenticator().authenticate("alice", user("bob").password)).rejects.toBeInstanceOf(
      CredentialsRejected,
    );
  });

  it("leaves a user the directory does not know to the next authenticator", async () => {
    expect(await authenticator().authenticate("mallory", "any-password")).toBeUndefined();
  });

  it("rejects an empty password without asking the server, even for a user that exists", async () => {
    await expect(authenticator().authenticate("alice", "")).rejects.toBeInstanceOf(CredentialsRejected);
    // Nobody listens here: the answer can only have come from before any connection or bind.
    const nowhere = authenticator({ url: `ldap://127.0.0.1:${await freePort()}` });
    await expect(nowhere.authenticate("alice", "")).rejects.toBeInstanceOf(CredentialsRejected);
  });

  it("refuses the filter injection username with every password in the directory", async () => {
    const passwords = [...Object.values(ldap.users).map((entry) => entry.password), ldap.servicePassword, "x"];
    for (const password of passwords) {
      expect(["unknown", "CredentialsRejected"]).toContain(
        await outcome(authenticator().authenticate(INJECTION, password)),
      );
    }
    expect(await authenticator().lookup(INJECTION)).toBeUndefined();
  });

  it("matches a username holding * literally, never as a wildcard over other users", async () => {
    for (const username of ["*", "a*", "ali*", "*e", "*)(uid=alice"]) {
      expect(await outcome(authenticator().authenticate(username, user("alice").password))).toBe("unknown");
      expect(await authenticator().lookup(username)).toBeUndefined();
    }
  });

  it("rejects a username that matches two entries, even with their right password", async () => {
    const { username, password } = ldap.ambiguous;
    await expect(authenticator().authenticate(username, password)).rejects.toBeInstanceOf(CredentialsRejected);
    expect(await authenticator().lookup(username)).toBeUndefined();
  });

  it("looks a user up with groups and without a password, and finds no one for an unknown name", async () => {
    expect(sortedGroups(await authenticator().lookup("alice"))).toEqual(expected("alice"));
    expect(await authenticator().lookup("carol")).toEqual(expected("carol"));
    expect(await authenticator().lookup("mallory")).toBeUndefined();
  });

  it("reports a refused service account as unavailable, not as the user's wrong password", async () => {
    const misconfigured = authenticator({ bindPassword: "not-the-service-password" });
    const failure = misconfigured.authenticate("alice", user("alice").password);
    await expect(failure).rejects.toBeInstanceOf(AuthenticatorUnavailable);
    await expect(failure).rejects.toThrow(/service bind/);
    await expect(misconfigured.lookup("alice")).rejects.toBeInstanceOf(AuthenticatorUnavailable);
  });

  it("never writes a user's or the service account's password to its log", async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "trace", destination: { write: (line: string) => void lines.push(line) } });
    await authenticator({}, logger).authenticate("alice", user("alice").password);
    await authenticator({}, logger)
      .authenticate("alice", "wrong-password-in-the-log-test")
      .catch(() => undefined);
    await authenticator({ bindPassword: "wrong-service-password-in-the-log-test" }, logger)
      .authenticate("bob", user("bob").password)
      .catch(() => undefined);
    await authenticator({}, logger)
      .authenticate(ldap.ambiguous.username, ldap.ambiguous.password)
      .catch(() => undefined);
    const log = lines.join("");
    expect(log).toContain("service bind");
    for (const secret of [
      user("alice").password,
      user("bob").password,
      ldap.servicePassword,
      ldap.ambiguous.password,
      "wrong-password-in-the-log-test",
      "wrong-service-password-in-the-log-test",
    ]) {
      expect(log).not.toContain(secret);
    }
  });
});

describe("LDAP over TLS", () => {
  it("authenticates over StartTLS, checking the server against the CA file", async () => {
    const startTls = authenticator({ startTls: true, caFile: ldap.caFile });
    expect(sortedGroups(await startTls.authenticate("alice", user("alice").password))).toEqual(expected("alice"));
    await expect(startTls.authenticate("alice", "wrong")).rejects.toBeInstanceOf(CredentialsRejected);
  });

  it("authenticates over ldaps, checking the server against the CA file", async () => {
    const ldaps = authenticator({ url: ldap.ldapsUrl, caFile: ldap.caFile });
    expect(sortedGroups(await ldaps.authenticate("alice", user("alice").password))).toEqual(expected("alice"));
    expect(sortedGroups(await ldaps.lookup("bob"))).toEqual(expected("bob"));
  });

  it("reports a server certificate from another CA as unavailable, over ldaps and StartTLS", async () => {
    for (const wrong of [
      authenticator({ url: ldap.ldapsUrl, caFile: wrongCaFile }),
      authenticator({ startTls: true, caFile: wrongCaFile }),
    ]) {
      const failure = wrong.authenticate("alice", user("alice").password);
      await expect(failure).rejects.toBeInstanceOf(AuthenticatorUnavailable);
      await expect(failure).rejects.toThrow(/certificate/);
    }
  });
});

describe("an LDAP server that cannot answer", () => {
  it("reports a port nobody listens on as unavailable", async () => {
    const down = authenticator({ url: `ldap://127.0.0.1:${await freePort()}`, timeoutMs: 2_000 });
    const failure = down.authenticate("alice", "some-password");
    await expect(failure).rejects.toBeInstanceOf(AuthenticatorUnavailable);
    await expect(failure).rejects.toThrow(/ECONNREFUSED/);
    await expect(down.lookup("alice")).rejects.toBeInstanceOf(AuthenticatorUnavailable);
  });

  it("reports a slapd that has stopped as unavailable, where it had authenticated before", async () => {
    const own = await startSlapd();
    try {
      const before = authenticator({
        url: own.url,
        bindDn: own.serviceDn,
        bindPassword: own.servicePassword,
        timeoutMs: 2_000,
      });
      const alice = own.users.alice;
      if (alice === undefined) throw new Error("the second slapd has no alice");
      expect((await before.authenticate("alice", alice.password))?.name).toBe("alice");
      await own.stop();
      await expect(before.authenticate("alice", alice.password)).rejects.toBeInstanceOf(AuthenticatorUnavailable);
    } finally {
      await own.stop();
    }
  });

  it.each([
    ["plain LDAP", (hostPort: string) => ({ url: `ldap://${hostPort}` })],
    ["StartTLS", (hostPort: string) => ({ url: `ldap://${hostPort}`, startTls: true })],
    ["ldaps", (hostPort: string) => ({ url: `ldaps://${hostPort}` })],
  ])("gives up on a server that accepts TCP but never answers (%s) after timeoutMs", async (_, target) => {
    const silent = await startSilentServer();
    try {
      const stuck = authenticator({ ...target(silent.url), timeoutMs: 500 });
      const failure = stuck.authenticate("alice", "some-password");
      await expect(failure).rejects.toBeInstanceOf(AuthenticatorUnavailable);
      await expect(failure).rejects.toThrow(/did not answer within 500 ms/);
      await waitUntil(async () => silent.sockets.size === 0, { what: "the authenticator to close its connection" });
      await expect(stuck.lookup("alice")).rejects.toBeInstanceOf(AuthenticatorUnavailable);
    } finally {
      await stopSilentServer(silent);
    }
  });

  it("fails an authentication in flight when closed, and refuses calls after that", async () => {
    const silent = await startSilentServer();
    try {
      const closing = createLdapAuthenticator(settings({ url: `ldap://${silent.url}`, timeoutMs: 60_000 }));
      const failure = closing.authenticate("alice", "some-password");
      await waitUntil(async () => silent.sockets.size === 1, { what: "the authenticator to connect" });
      await closing.close();
      await expect(failure).rejects.toBeInstanceOf(AuthenticatorUnavailable);
      await waitUntil(async () => silent.sockets.size === 0, { what: "the authenticator to close its connection" });
      await expect(closing.authenticate("alice", "some-password")).rejects.toBeInstanceOf(AuthenticatorUnavailable);
    } finally {
      await stopSilentServer(silent);
    }
  });
});
