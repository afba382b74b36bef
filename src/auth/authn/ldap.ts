import { readFileSync } from "node:fs";
import { isIP, connect as netConnect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { Client, FilterParser, ResultCodeError, type Entry } from "ldapts";
import { silentLogger, type Logger } from "../../log.js";
import { AuthenticatorUnavailable, CredentialsRejected, type Authenticator, type Identity } from "./authenticator.js";

export interface LdapSettings {
  /** ldap://host:port or ldaps://host:port */
  url: string;
  /** Service account used to search; the search is anonymous when absent. */
  bindDn?: string;
  /** The service account's password, already resolved (the caller reads it from an environment variable). */
  bindPassword?: string;
  /** Where users are searched (whole subtree), e.g. ou=people,dc=example,dc=org */
  userBase: string;
  /** e.g. "(uid={username})": {username} is replaced by the RFC 4515-escaped username. */
  userFilter: string;
  /**
   * The entry's attribute holding the user's name as the directory spells it, e.g. "uid". Directories match
   * names without regard to case; reading the name back gives one account name however it was typed.
   */
  usernameAttribute?: string;
  /** e.g. "memberOf": group DNs read from the user entry; the group's name is the value of the DN's first RDN. */
  groupAttribute?: string;
  /**
   * Groups found by a search: `filter` e.g. "(member={dn})" ({dn} is the user's DN and {username} the
   * username, both RFC 4515-escaped); the group's name is the entry's `nameAttribute`, e.g. "cn".
   */
  groupSearch?: { base: string; filter: string; nameAttribute: string };
  /** Upgrade an ldap:// connection with the StartTLS extended operation before any bind. */
  startTls?: boolean;
  /** PEM CA bundle for ldaps:// and StartTLS; the system CAs when absent. */
  caFile?: string;
  /** Bound on each authentication or lookup as a whole: connect, TLS, binds and searches. */
  timeoutMs: number;
}

export interface LdapAuthenticator extends Authenticator {
  /** Cuts the connections of calls in flight (they fail as unavailable) and refuses later calls. */
  close(): Promise<void>;
}

export interface LdapDeps {
  logger?: Logger;
}

/** RFC 4515 section 3: the characters that must be escaped in an assertion value. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[\\*()\0]/g, (char) => `\\${char.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/**
 * The value of a DN's first RDN, unescaped (RFC 4514 section 3: `\,` style and `\2c` hex-pair escapes,
 * hex pairs being UTF-8 bytes): "cn=Smith\, John,ou=groups,dc=x" → "Smith, John". Undefined when the
 * string is not a DN. A multi-valued first RDN (`cn=a+ou=b`) yields its first value.
 */
export function firstRdnValue(dn: string): string | undefined {
  const equals = dn.indexOf("=");
  if (equals <= 0) return undefined;
  const bytes: number[] = [];
  const chars = Array.from(dn.slice(equals + 1));
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i] as string;
    if (char === "," || char === "+" || char === ";") break;
    if (char === "\\") {
      const pair = (chars[i + 1] ?? "") + (chars[i + 2] ?? "");
      if (/^[0-9a-fA-F]{2}$/.test(pair)) {
        bytes.push(parseInt(pair, 16));
        i += 2;
        continue;
      }
      i += 1;
      bytes.push(...Buffer.from(chars[i] ?? "", "utf8"));
      continue;
    }
    bytes.push(...Buffer.from(char, "utf8"));
  }
  const value = Buffer.from(bytes).toString("utf8").trim();
  return value === "" ? undefined : value;
}

/** Replaces each {name} of `values` in a filter template with the value, RFC 4515-escaped. */
function fillFilter(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (placeholder, name: string) => {
    const value = values[name];
    return value === undefined ? placeholder : escapeFilterValue(value);
  });
}

function checkSettings(settings: LdapSettings): { secure: boolean; host: string } {
  let url: URL;
  try {
    url = new URL(settings.url);
  } catch {
    throw new Error(
      `auth.ldap.url: expected ldap://HOST:PORT or ldaps://HOST:PORT, got ${JSON.stringify(settings.url)}`,
    );
  }
  if (url.protocol !== "ldap:" && url.protocol !== "ldaps:") {
    throw new Error(
      `auth.ldap.url: expected ldap://HOST:PORT or ldaps://HOST:PORT, got ${JSON.stringify(settings.url)}`,
    );
  }
  const secure = url.protocol === "ldaps:";
  if (secure && settings.startTls === true) {
    throw new Error("auth.ldap.startTls: StartTLS upgrades a plain ldap:// connection; an ldaps:// URL is already TLS");
  }
  if (!secure && settings.startTls !== true && settings.caFile !== undefined) {
    throw new Error("auth.ldap.caFile: set for a plain ldap:// URL without startTls, where nothing would be encrypted");
  }
  if (settings.bindDn !== undefined && (settings.bindPassword ?? "") === "") {
    // An empty password makes a simple bind unauthenticated (RFC 4513 section 5.1.2): it would "succeed".
    throw new Error(
      "auth.ldap.bindDn: the service account's password is empty " +
        "(auth.ldap.bindPasswordEnv names the environment variable that must hold it)",
    );
  }
  if (!settings.userFilter.includes("{username}")) {
    throw new Error(`auth.ldap.userFilter: must contain {username}, e.g. "(uid={username})"`);
  }
  checkFilter("auth.ldap.userFilter", settings.userFilter, { username: "probe" });
  if (settings.groupSearch !== undefined) {
    checkFilter("auth.ldap.groupSearch.filter", settings.groupSearch.filter, { dn: "cn=probe", username: "probe" });
  }
  if (!(settings.timeoutMs > 0)) throw new Error("auth.ldap.timeoutMs: expected a positive number of milliseconds");
  // URL keeps IPv6 literals in brackets; net.connect and certificate checks want them bare.
  return { secure, host: url.hostname.replace(/^\[(.*)\]$/, "$1") };
}

function checkFilter(key: string, template: string, values: Record<string, string>): void {
  try {
    FilterParser.parseString(fillFilter(template, values));
  } catch (error) {
    throw new Error(`${key}: not an LDAP filter (RFC 4515): ${(error as Error).message}`);
  }
}

function readCa(caFile: string): string {
  try {
    return readFileSync(caFile, "utf8");
  } catch (error) {
    throw new Error(`auth.ldap.caFile: cannot read ${caFile}: ${(error as Error).message}`);
  }
}

/** An attribute's values as strings, whatever the case the server spelt its name in. */
function attributeValues(entry: Entry, attribute: string): string[] {
  const key = Object.keys(entry).find((name) => name.toLowerCase() === attribute.toLowerCase());
  if (key === undefined || key === "dn") return [];
  const raw = entry[key];
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  return list.map((value) => (Buffer.isBuffer(value) ? value.toString("utf8") : String(value)));
}

/** Result codes of a user's bind that mean "wrong credentials" (RFC 4511 appendix A). */
const REJECTED_BIND_CODES = new Set([
  48, // inappropriateAuthentication
  49, // invalidCredentials
]);

type SetStage = (stage: string) => void;

/**
 * Authenticates against an LDAP directory: service bind, user search, user bind, groups.
 *
 * Each authentication and lookup opens a connection of its own and closes it. A user bind changes who the
 * connection is, so a pool would have to rebind as the service account after each one and could hand
 * out a connection still bound as the previous user if that failed half-way; the gateway caches verified
 * credentials, so the cost of a connection per login is paid once per login, not once per request.
 */
export function createLdapAuthenticator(settings: LdapSettings, deps: LdapDeps = {}): LdapAuthenticator {
  const target = checkSettings(settings);
  const logger = (deps.logger ?? silentLogger).child({ authenticator: "ldap", url: settings.url });
  const tlsOptions: ConnectionOptions = settings.caFile === undefined ? {} : { ca: readCa(settings.caFile) };
  const sessions = new Set<Set<Socket>>();
  let closed = false;

  function unavailable(error: unknown, stage: string): Error {
    if (error instanceof CredentialsRejected || error instanceof AuthenticatorUnavailable) return error;
    if (error instanceof ResultCodeError) {
      return new AuthenticatorUnavailable(
        "ldap",
        `LDAP server ${settings.url} refused the ${stage}: ${error.message} (result code ${error.code})`,
      );
    }
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    const reason = `${error instanceof Error ? error.message : String(error)}${code === undefined ? "" : ` [${code}]`}`;
    return new AuthenticatorUnavailable("ldap", `cannot reach LDAP server ${settings.url} (${stage}): ${reason}`);
  }

  /**
   * Runs `work` on a fresh connection (upgraded with StartTLS when asked), bounded by timeoutMs as a
   * whole. Every socket ldapts opens is tracked, so a timed-out or closed session leaves none behind.
   */
  async function withConnection<T>(work: (client: Client, setStage: SetStage) => Promise<T>): Promise<T> {
    if (closed) throw new AuthenticatorUnavailable("ldap", "the LDAP authenticator is closed");
    const sockets = new Set<Socket>();
    sessions.add(sockets);
    const track = <S extends Socket>(socket: S): S => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      return socket;
    };
    const client = new Client({
      url: settings.url,
      timeout: settings.timeoutMs,
      connectTimeout: settings.timeoutMs,
      // ldapts speaks TLS from the first byte whenever tlsOptions has a value, whatever the URL's scheme.
      tlsOptions: target.secure ? tlsOptions : undefined,
      createConnection: ((port: number, host: string) => track(netConnect(port, host))) as typeof netConnect,
      // Called with (port, host, options) for ldaps:// and with (options) to upgrade for StartTLS.
      createSecureConnection: ((...args: unknown[]) =>
        track((tlsConnect as (...a: unknown[]) => TLSSocket)(...args))) as typeof tlsConnect,
    });
    let stage = "connect";
    const setStage: SetStage = (next) => {
      stage = next;
    };
    let timer: NodeJS.Timeout | undefined;
    let expired = false;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        expired = true;
        reject(
          new AuthenticatorUnavailable(
            "ldap",
            `LDAP server ${settings.url} did not answer within ${settings.timeoutMs} ms (${stage})`,
          ),
        );
      }, settings.timeoutMs);
    });
    const session = (async () => {
      if (settings.startTls === true) {
        stage = "StartTLS";
        // ldapts upgrades the socket without a host name; the certificate is checked against this one.
        const servername = isIP(target.host) === 0 ? target.host : undefined;
        await client.startTLS({ ...tlsOptions, host: target.host, servername });
      }
      return work(client, setStage);
    })();
    try {
      return await Promise.race([session, deadline]);
    } catch (error) {
      const failure = unavailable(error, stage);
      if (failure instanceof AuthenticatorUnavailable) logger.warn({ stage }, failure.message);
      throw failure;
    } finally {
      clearTimeout(timer);
      // The answer does not wait for the goodbye: an unbind on a live connection, bounded, then every socket cut.
      void release(client, sockets, !expired && client.isConnected);
    }
  }

  async function release(client: Client, sockets: Set<Socket>, unbind: boolean): Promise<void> {
    if (unbind) {
      const done = new AbortController();
      await Promise.race([
        client.unbind().catch(() => undefined),
        sleep(settings.timeoutMs, undefined, { signal: done.signal }).catch(() => undefined),
      ]);
      done.abort();
    }
    for (const socket of sockets) socket.destroy();
    sessions.delete(sockets);
  }

  /** Service bind (when configured) and the user's entry; undefined when no entry matches. */
  async function findUser(client: Client, setStage: SetStage, username: string): Promise<Entry | undefined> {
    if (settings.bindDn !== undefined) {
      setStage("service bind");
      await client.bind(settings.bindDn, settings.bindPassword);
    }
    setStage("user search");
    const { searchEntries } = await client.search(settings.userBase, {
      scope: "sub",
      filter: fillFilter(settings.userFilter, { username }),
      // Two are enough to tell "exactly one" from "ambiguous".
      sizeLimit: 2,
      attributes: [settings.usernameAttribute, settings.groupAttribute].filter((a): a is string => a !== undefined),
    });
    if (searchEntries.length > 1) {
      logger.warn({ username }, "auth.ldap.userFilter matches more than one entry for this username; refusing it");
      throw new CredentialsRejected();
    }
    return searchEntries[0];
  }

  async function groupsOf(client: Client, setStage: SetStage, entry: Entry, username: string): Promise<string[]> {
    const names: string[] = [];
    if (settings.groupAttribute !== undefined) {
      for (const dn of attributeValues(entry, settings.groupAttribute)) {
        const name = firstRdnValue(dn);
        if (name !== undefined) names.push(name);
      }
    }
    if (settings.groupSearch !== undefined) {
      const { base, filter, nameAttribute } = settings.groupSearch;
      setStage("group search");
      const { searchEntries } = await client.search(base, {
        scope: "sub",
        filter: fillFilter(filter, { dn: entry.dn, username }),
        attributes: [nameAttribute],
      });
      for (const group of searchEntries) names.push(...attributeValues(group, nameAttribute));
    }
    return [...new Set(names)];
  }

  function identity(entry: Entry, typed: string, groups: string[]): Identity {
    const stored =
      settings.usernameAttribute === undefined ? undefined : attributeValues(entry, settings.usernameAttribute)[0];
    // LDAP cannot tell us when a password changed, so there is no stamp to revoke refresh tokens by.
    return { name: stored ?? typed, groups, source: "ldap", credentialStamp: "" };
  }

  return {
    source: "ldap",

    async authenticate(username, password) {
      // A simple bind with an empty password is an unauthenticated bind, which servers answer with
      // success (RFC 4513 section 5.1.2): it must never reach the server as a password check.
      if (password === "") throw new CredentialsRejected();
      if (username === "") return undefined;
      return withConnection(async (client, setStage) => {
        const entry = await findUser(client, setStage, username);
        if (entry === undefined) return undefined;
        // Read with the service account's rights, before the connection becomes the user's.
        const groups = await groupsOf(client, setStage, entry, username);
        setStage("user bind");
        try {
          await client.bind(entry.dn, password);
        } catch (error) {
          if (error instanceof ResultCodeError && REJECTED_BIND_CODES.has(error.code)) {
            logger.debug({ username }, "LDAP rejected the user's password");
            throw new CredentialsRejected();
          }
          throw error;
        }
        return identity(entry, username, groups);
      });
    },

    async lookup(username) {
      if (username === "") return undefined;
      try {
        return await withConnection(async (client, setStage) => {
          const entry = await findUser(client, setStage, username);
          if (entry === undefined) return undefined;
          return identity(entry, username, await groupsOf(client, setStage, entry, username));
        });
      } catch (error) {
        // An ambiguous username is no user: a refresh grant for it must fail, not pick one.
        if (error instanceof CredentialsRejected) return undefined;
        throw error;
      }
    },

    async close() {
      closed = true;
      for (const sockets of sessions) for (const socket of sockets) socket.destroy();
    },
  };
}
