import { createHash, randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand } from "./command.js";
import { startOnFreePort } from "./daemon-on-free-port.js";
import { daemonInDir, spawnDaemon, type RunningDaemon } from "./daemon-process.js";
import { freePort } from "./free-port.js";
import { startInTempDir } from "./temp-dir.js";
import { createTestCa, issueServerCertificate } from "./test-ca.js";
import { requireTool } from "./tools.js";

export interface SlapdUser {
  dn: string;
  password: string;
  /** Names (cn) of the groupOfNames entries listing this user as a member. */
  groups: string[];
}

export interface Slapd extends RunningDaemon {
  /** ldap://127.0.0.1:PORT (StartTLS is offered on it when started with `tls`). */
  url: string;
  /** ldaps://127.0.0.1:PORT, when started with `tls`. */
  ldapsUrl?: string;
  /** The test CA that signed the server certificate (for 127.0.0.1), when started with `tls`. */
  caPem?: string;
  caFile?: string;
  baseDn: string;
  peopleDn: string;
  groupsDn: string;
  serviceDn: string;
  servicePassword: string;
  /** alice (admins, developers), bob (developers), carol (no group), renée (non-ASCII uid, no group). */
  users: Record<string, SlapdUser>;
  /** A uid held by two entries under peopleDn, both with this password. */
  ambiguous: { username: string; password: string };
}

export interface SlapdOptions {
  /** Also listen on ldaps://, and offer StartTLS on ldap://, with a certificate from a test CA. */
  tls?: boolean;
}

// Debian's slapd loads its backends and overlays as modules from here (slapd.conf's modulepath).
const MODULE_PATH = "/usr/lib/ldap";
const SCHEMA_DIR = "/etc/ldap/schema";
const BASE_DN = "dc=example,dc=org";
const PEOPLE_DN = `ou=people,${BASE_DN}`;
const GROUPS_DN = `ou=groups,${BASE_DN}`;
const ROOT_DN = `cn=admin,${BASE_DN}`;
const SERVICE_DN = `cn=portcullis,ou=services,${BASE_DN}`;

/** `{SSHA}` as slappasswd writes it: base64(SHA-1(password + salt) + salt). */
function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash("sha1").update(password, "utf8").update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString("base64")}`;
}

/** An LDIF line; a value that is not a plain printable ASCII SAFE-STRING (RFC 2849) goes base64, as `attr:: …`. */
function ldifLine(attribute: string, value: string): string {
  const safe = /^[\x20-\x7e]*$/.test(value) && !/^[ :<]/.test(value) && !value.endsWith(" ");
  return safe ? `${attribute}: ${value}` : `${attribute}:: ${Buffer.from(value, "utf8").toString("base64")}`;
}

function ldifEntry(dn: string, attributes: readonly (readonly [string, string])[]): string {
  return [ldifLine("dn", dn), ...attributes.map(([name, value]) => ldifLine(name, value))].join("\n") + "\n";
}

interface TlsFiles {
  caFile: string;
  caPem: string;
  certFile: string;
  keyFile: string;
}

/** A test CA and a server certificate for 127.0.0.1 signed by it. */
async function createTlsFiles(dir: string): Promise<TlsFiles> {
  const ca = await createTestCa(join(dir, "ca"), "Portcullis test LDAP CA");
  const server = await issueServerCertificate(dir, ca, "127.0.0.1");
  return { caFile: ca.certFile, caPem: ca.pem, ...server };
}

/**
 * cn=config for slapadd -n0: mdb for dc=example,dc=org in `dataDir`, a rootdn, and the memberof
 * overlay so that groupOfNames writes maintain memberOf on the members. Only LDAP writes run overlays
 * (slapadd does not), which is why the groups are added with ldapadd once slapd is up.
 */
function configLdif(dir: string, dataDir: string, rootPassword: string, tls: TlsFiles | undefined): string {
  const global: [string, string][] = [
    ["objectClass", "olcGlobal"],
    ["cn", "config"],
    ["olcPidFile", join(dir, "slapd.pid")],
    ["olcArgsFile", join(dir, "slapd.args")],
  ];
  if (tls !== undefined) {
    global.push(
      ["olcTLSCACertificateFile", tls.caFile],
      ["olcTLSCertificateFile", tls.certFile],
      ["olcTLSCertificateKeyFile", tls.keyFile],
    );
  }
  return [
    ldifEntry("cn=config", global),
    ldifEntry("cn=module{0},cn=config", [
      ["objectClass", "olcModuleList"],
      ["cn", "module{0}"],
      ["olcModulePath", MODULE_PATH],
      ["olcModuleLoad", "back_mdb"],
      ["olcModuleLoad", "memberof"],
    ]),
    ldifEntry("cn=schema,cn=config", [
      ["objectClass", "olcSchemaConfig"],
      ["cn", "schema"],
    ]),
    ...["core", "cosine", "inetorgperson"].map((schema) => `include: file://${SCHEMA_DIR}/${schema}.ldif\n`),
    ldifEntry("olcDatabase={-1}frontend,cn=config", [
      ["objectClass", "olcDatabaseConfig"],
      ["objectClass", "olcFrontendConfig"],
      ["olcDatabase", "{-1}frontend"],
    ]),
    ldifEntry("olcDatabase={0}config,cn=config", [
      ["objectClass", "olcDatabaseConfig"],
      ["olcDatabase", "{0}config"],
      ["olcAccess", "{0}to * by * none"],
    ]),
    ldifEntry("olcDatabase={1}mdb,cn=config", [
      ["objectClass", "olcDatabaseConfig"],
      ["objectClass", "olcMdbConfig"],
      ["olcDatabase", "{1}mdb"],
      ["olcDbDirectory", dataDir],
      ["olcDbMaxSize", String(64 * 1024 * 1024)],
      ["olcSuffix", BASE_DN],
      ["olcRootDN", ROOT_DN],
      ["olcRootPW", ssha(rootPassword)],
      ["olcAccess", "{0}to attrs=userPassword by anonymous auth by * none"],
      ["olcAccess", "{1}to * by * read"],
      ["olcDbIndex", "objectClass eq"],
      ["olcDbIndex", "uid eq"],
      ["olcDbIndex", "member eq"],
    ]),
    ldifEntry("olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config", [
      ["objectClass", "olcOverlayConfig"],
      ["objectClass", "olcMemberOf"],
      ["olcOverlay", "{0}memberof"],
      ["olcMemberOfGroupOC", "groupOfNames"],
      ["olcMemberOfMemberAD", "member"],
      ["olcMemberOfMemberOfAD", "memberOf"],
    ]),
  ].join("\n");
}

function person(dn: string, uid: string, password: string): string {
  return ldifEntry(dn, [
    ["objectClass", "inetOrgPerson"],
    ["uid", uid],
    ["cn", uid],
    ["sn", uid],
    ["userPassword", ssha(password)],
  ]);
}

function organizationalUnit(dn: string, name: string): string {
  return ldifEntry(dn, [
    ["objectClass", "organizationalUnit"],
    ["ou", name],
  ]);
}

function password(): string {
  return randomBytes(12).toString("base64url");
}

/**
 * A real OpenLDAP slapd (Debian's `slapd`), as root, with its own cn=config directory and mdb database
 * in a temp dir, listening on 127.0.0.1 only; never the system instance or its config. Users:
 * alice (admins, developers), bob (developers), carol (no group), a service account allowed to search,
 * and two entries sharing one uid.
 */
export async function startSlapd(options: SlapdOptions = {}): Promise<Slapd> {
  const slapd = requireTool("slapd", "slapd");
  const slapadd = requireTool("slapadd", "slapd");
  const ldapadd = requireTool("ldapadd", "ldap-utils");
  const ldapwhoami = requireTool("ldapwhoami", "ldap-utils");
  return startInTempDir("slapd-", async (work) => {
    const dir = work.path;
    const configDir = join(dir, "slapd.d");
    const dataDir = join(dir, "data");
    await mkdir(configDir);
    await mkdir(dataDir);
    const tls = options.tls === true ? await createTlsFiles(join(dir, "tls")) : undefined;

    const rootPassword = password();
    const rootPasswordFile = join(dir, "root.password");
    await writeFile(rootPasswordFile, rootPassword, { mode: 0o600 });
    await writeFile(join(dir, "config.ldif"), configLdif(dir, dataDir, rootPassword, tls));
    await runCommand(slapadd, ["-n0", "-F", configDir, "-l", join(dir, "config.ldif")]);

    const users: Record<string, SlapdUser> = {
      alice: { dn: `uid=alice,${PEOPLE_DN}`, password: password(), groups: ["admins", "developers"] },
      bob: { dn: `uid=bob,${PEOPLE_DN}`, password: password(), groups: ["developers"] },
      carol: { dn: `uid=carol,${PEOPLE_DN}`, password: password(), groups: [] },
      renée: { dn: `uid=renée,${PEOPLE_DN}`, password: password(), groups: [] },
    };
    const ambiguous = { username: "dave", password: password() };
    const servicePassword = password();
    const data = [
      ldifEntry(BASE_DN, [
        ["objectClass", "dcObject"],
        ["objectClass", "organization"],
        ["dc", "example"],
        ["o", "Example"],
      ]),
      organizationalUnit(PEOPLE_DN, "people"),
      organizationalUnit(`ou=contractors,${PEOPLE_DN}`, "contractors"),
      organizationalUnit(`ou=services,${BASE_DN}`, "services"),
      ldifEntry(SERVICE_DN, [
        ["objectClass", "organizationalRole"],
        ["objectClass", "simpleSecurityObject"],
        ["cn", "portcullis"],
        ["userPassword", ssha(servicePassword)],
      ]),
      ...Object.entries(users).map(([uid, user]) => person(user.dn, uid, user.password)),
      person(`uid=dave,${PEOPLE_DN}`, "dave", ambiguous.password),
      person(`uid=dave,ou=contractors,${PEOPLE_DN}`, "dave", ambiguous.password),
    ];
    await writeFile(join(dir, "data.ldif"), data.join("\n"));
    await runCommand(slapadd, ["-n1", "-F", configDir, "-l", join(dir, "data.ldif")]);

    const groupNames = [...new Set(Object.values(users).flatMap((user) => user.groups))];
    const groups = [
      organizationalUnit(GROUPS_DN, "groups"),
      ...groupNames.map((name) =>
        ldifEntry(`cn=${name},${GROUPS_DN}`, [
          ["objectClass", "groupOfNames"],
          ["cn", name],
          ...Object.values(users)
            .filter((user) => user.groups.includes(name))
            .map((user) => ["member", user.dn] as const),
        ]),
      ),
    ];
    await writeFile(join(dir, "groups.ldif"), groups.join("\n"));

    const { daemon, url, ldapsUrl } = await startOnFreePort(async (port, attempt) => {
      const url = `ldap://127.0.0.1:${port}`;
      const ldapsUrl = tls === undefined ? undefined : `ldaps://127.0.0.1:${await freePort()}`;
      const listeners = [url, ldapsUrl].filter((listener) => listener !== undefined).map((listener) => `${listener}/`);
      // -d keeps slapd in the foreground (no fork), so stop() signals slapd itself; 0 logs nothing extra.
      const daemon = spawnDaemon(slapd, ["-d", "0", "-h", listeners.join(" "), "-F", configDir], {
        logPath: join(dir, `slapd-${attempt}.log`),
      });
      const ready = async () => {
        await runCommand(ldapwhoami, ["-x", "-H", url, "-D", ROOT_DN, "-y", rootPasswordFile], { timeoutMs: 5_000 });
        return true;
      };
      return { daemon, what: `slapd on ${url}`, ready, url, ldapsUrl };
    });
    try {
      await runCommand(ldapadd, [
        "-x",
        "-H",
        url,
        "-D",
        ROOT_DN,
        "-y",
        rootPasswordFile,
        "-f",
        join(dir, "groups.ldif"),
      ]);
    } catch (error) {
      await daemon.stop();
      throw error;
    }

    return {
      url,
      ldapsUrl,
      caPem: tls?.caPem,
      caFile: tls?.caFile,
      baseDn: BASE_DN,
      peopleDn: PEOPLE_DN,
      groupsDn: GROUPS_DN,
      serviceDn: SERVICE_DN,
      servicePassword,
      users,
      ambiguous,
      ...daemonInDir(daemon, work),
    };
  });
}
