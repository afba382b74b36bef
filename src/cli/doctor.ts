import { X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { request } from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import { htpasswdPath } from "../auth/from-config.js";
import { readHtpasswd } from "../auth/authn/htpasswd-file.js";
import { createLdapAuthenticator } from "../auth/authn/ldap.js";
import type { Config } from "../config/schema.js";
import { parseHostPort } from "../http/listen-address.js";
import { silentLogger } from "../log.js";
import { readTlsMaterial, wantedNames } from "../pki/tls-material.js";
import { certificateCovers } from "../pki/x509.js";
import { checkWritable } from "../registry/storage/writable-check.js";
import { checkUpstream } from "../upstream/check.js";
import { createUpstreamClient, type UpstreamClient } from "../upstream/client.js";
import { proxiedUpstreamConfig } from "../upstream/clients.js";
import { hasSwitch, parseArgs } from "./args.js";
import { adminFlags, commonFlags, adminConfigFromArgs } from "./config-args.js";
import { UsageError } from "./errors.js";

/** One thing `doctor` looked at: what it found and, when it is not right, what to do about it. */
export interface Finding {
  check: "config" | "certificate" | "ca" | "clock" | "storage" | "users" | "ldap" | "upstream" | "port";
  status: "ok" | "warn" | "fail";
  message: string;
  fix?: string;
}

export interface DiagnoseOptions {
  now?: Date;
  /** The machine's names and addresses the certificate must cover; the real ones by default. */
  names?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** How admin commands reach this server, for the advice: `--config FILE`, … */
  flags?: readonly string[];
}

const day = 24 * 60 * 60 * 1000;
const lowSpaceBytes = 1024 ** 3;

/** `portcullis doctor`: everything it checks, one line each; exit 1 when something is wrong. */
export async function runDoctor(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags], ["json"]);
  if (args.positionals.length > 0) throw new UsageError(`doctor takes no arguments (got "${args.positionals[0]}")`);
  const config = await adminConfigFromArgs(args);
  const findings = await diagnose(config, { flags: adminFlags(args, config) });
  const json = hasSwitch(args, "json");
  for (const finding of findings) {
    if (json) process.stdout.write(`${JSON.stringify(finding)}\n`);
    else {
      const label = { ok: "ok  ", warn: "WARN", fail: "FAIL" }[finding.status];
      process.stdout.write(`${label}  ${finding.check.padEnd(11)}  ${finding.message}\n`);
      if (finding.fix) process.stdout.write(`      ${"".padEnd(11)}  fix: ${finding.fix}\n`);
    }
  }
  if (findings.some((f) => f.status === "fail")) process.exitCode = 1;
}

/** Every check, in the order an operator would fix things. Nothing is created or changed. */
export async function diagnose(config: Config, options: DiagnoseOptions = {}): Promise<Finding[]> {
  const flags = options.flags?.length ? ` ${options.flags.join(" ")}` : "";
  return [
    ...(await certificateFindings(config, options, flags)),
    ...(await storageFindings(config)),
    ...(await userFindings(config, flags)),
    ...(await ldapFindings(config, options.env ?? process.env)),
    ...(await upstreamFindings(config)),
    await portFinding(config),
  ];
}

async function certificateFindings(config: Config, options: DiagnoseOptions, flags: string): Promise<Finding[]> {
  const now = options.now ?? new Date();
  const material = await readTlsMaterial(config).catch((error: Error) => error);
  if (material instanceof Error)
    return [{ check: "certificate", status: "fail", message: material.message, fix: "correct tls.server or tls.ca" }];
  if (!material?.certChainPem)
    return [
      {
        check: "certificate",
        status: "fail",
        message: `no ${material ? "server certificate" : "CA"} in ${config.certs}`,
        fix: `start the server once (portcullis serve${flags}) or run portcullis init; with --certs, point at the server's directory`,
      },
    ];
  const findings: Finding[] = [];
  const cert = new X509Certificate(material.certChainPem);
  const validTo = new Date(cert.validTo);
  const validFrom = new Date(cert.validFrom);
  const managedElsewhere = config.tls.server !== undefined;
  const renew = managedElsewhere
    ? "issue a new certificate for tls.server.cert where it is managed"
    : `portcullis ca renew${flags} (a running server picks it up without a restart)`;
  if (validTo <= now) {
    findings.push({
      check: "certificate",
      status: "fail",
      message: `the server certificate expired on ${validTo.toISOString()}: every client fails with "x509: certificate has expired or is not yet valid"`,
      fix: renew,
    });
  } else if (validTo.getTime() - now.getTime() < config.tls.renewBeforeDays * day) {
    findings.push({
      check: "certificate",
      status: "warn",
      message: `the server certificate expires on ${validTo.toISOString()}`,
      fix: managedElsewhere ? renew : "a running server renews it by itself; or now: " + renew,
    });
  }
  const names = options.names ?? wantedNames(config);
  const missing = names.filter((name) => !certificateCovers(material.certChainPem as string, name));
  if (missing.length > 0) {
    findings.push({
      check: "certificate",
      status: "fail",
      message:
        `the server certificate does not cover ${missing.join(", ")}: a client using one of them fails with ` +
        `"x509: certificate is valid for …, not …" (or, for an address, "cannot validate certificate for … because it doesn't contain any IP SANs")`,
      fix: managedElsewhere ? `${renew}, with these names` : renew,
    });
  }
  if (findings.length === 0)
    findings.push({
      check: "certificate",
      status: "ok",
      message: `valid until ${validTo.toISOString()}, covers every name and address (${names.length})`,
    });
  if (validFrom > now)
    findings.push({
      check: "clock",
      status: "fail",
      message: `the certificate starts at ${validFrom.toISOString()}, after this machine's clock (${now.toISOString()})`,
      fix: "set the clock (enable NTP: timedatectl set-ntp true); tokens and certificates depend on it",
    });
  else findings.push({ check: "clock", status: "ok", message: `${now.toISOString()}, after the certificate's start` });
  if (material.caCertPem) {
    const caEnd = new Date(new X509Certificate(material.caCertPem).validTo);
    const soon = caEnd.getTime() - now.getTime() < 90 * day;
    findings.push({
      check: "ca",
      status: caEnd <= now ? "fail" : soon ? "warn" : "ok",
      message: `the CA (${material.caFingerprint?.slice(0, 23)}…) is valid until ${caEnd.toISOString()}`,
      ...(soon
        ? { fix: "plan a new CA: every client has to trust the new one (install.sh) before the old one ends" }
        : {}),
    });
  }
  return findings;
}

async function storageFindings(config: Config): Promise<Finding[]> {
  if (config.upstream) return [];
  if (!existsSync(config.data))
    return [
      {
        check: "storage",
        status: "warn",
        message: `${config.data} does not exist yet`,
        fix: "serve creates it; with --data, point at the server's storage root",
      },
    ];
  try {
    await checkWritable(config.data);
  } catch (error) {
    return [
      {
        check: "storage",
        status: "fail",
        message: `${(error as Error).message}: pushes fail, and so does the audit log`,
        fix: `make ${config.data} writable for the user Portcullis runs as (mount it read-write; with the systemd unit, list it in ReadWritePaths=)`,
      },
    ];
  }
  const space = await statfs(config.data);
  const free = space.bavail * space.bsize;
  const share = space.blocks > 0 ? space.bavail / space.blocks : 1;
  const low = free < lowSpaceBytes || share < 0.05;
  return [
    {
      check: "storage",
      status: low ? "warn" : "ok",
      message: `${config.data} takes writes; ${(free / 1024 ** 3).toFixed(1)} GiB free (${Math.round(share * 100)}%)`,
      ...(low ? { fix: "free space (delete unused tags, then garbage-collect) or grow the volume" } : {}),
    },
  ];
}

async function userFindings(config: Config, flags: string): Promise<Finding[]> {
  const file = htpasswdPath(config);
  const findings: Finding[] = [];
  try {
    const users = await readHtpasswd(file);
    if (users.size === 0 && !config.auth.ldap)
      findings.push({
        check: "users",
        status: "warn",
        message: `no users in ${file}`,
        fix: `portcullis user add NAME${flags} (serve creates admin on its first start)`,
      });
    else findings.push({ check: "users", status: "ok", message: `${users.size} htpasswd users in ${file}` });
  } catch (error) {
    findings.push({
      check: "users",
      status: "fail",
      message: (error as Error).message,
      fix: "fix or remove that line; the server keeps the last good file",
    });
  }
  const passwordFile = join(config.certs, "admin-password");
  if (existsSync(passwordFile))
    findings.push({
      check: "users",
      status: "warn",
      message: `${passwordFile} still holds the first admin password`,
      fix: `read it, then portcullis user passwd admin${flags} (which removes the file)`,
    });
  return findings;
}

async function ldapFindings(config: Config, env: NodeJS.ProcessEnv): Promise<Finding[]> {
  const settings = config.auth.ldap;
  if (!settings) return [];
  if (settings.bindPasswordEnv && !env[settings.bindPasswordEnv])
    return [
      {
        check: "ldap",
        status: "fail",
        message: `auth.ldap.bindPasswordEnv names ${settings.bindPasswordEnv}, which is not set here: serve refuses to start without it`,
        fix: `set ${settings.bindPasswordEnv} for serve (systemd: Environment= or EnvironmentFile= in the unit) and in this shell`,
      },
    ];
  const ldap = createLdapAuthenticator({
    ...settings,
    bindPassword: settings.bindPasswordEnv ? env[settings.bindPasswordEnv] : undefined,
  });
  try {
    await ldap.lookup("portcullis-doctor-probe");
    return [{ check: "ldap", status: "ok", message: `${settings.url} answers a search under ${settings.userBase}` }];
  } catch (error) {
    return [
      {
        check: "ldap",
        status: "fail",
        message: `${settings.url} did not answer: ${(error as Error).message}; LDAP users cannot sign in (htpasswd users still can)`,
        fix: "check auth.ldap.url and that this host reaches it (firewall, DNS), then auth.ldap.bindDn and the password in auth.ldap.bindPasswordEnv",
      },
    ];
  } finally {
    await ldap.close();
  }
}

async function upstreamFindings(config: Config): Promise<Finding[]> {
  const proxied = proxiedUpstreamConfig(config);
  if (!proxied) return [];
  let client: UpstreamClient | undefined;
  try {
    client = createUpstreamClient(proxied, { logger: silentLogger });
    await checkUpstream(client);
    return [{ check: "upstream", status: "ok", message: `${proxied.url} answers /v2/ to the gateway's account` }];
  } catch (error) {
    return [
      {
        check: "upstream",
        status: "fail",
        message: `${proxied.url} did not answer: ${(error as Error).message}`,
        fix: "start the registry behind Portcullis, or correct upstream (and its entry in upstreams: url, username, password, ca)",
      },
    ];
  } finally {
    client?.close();
  }
}

/** Whether the port is free, or held by a Portcullis that answers /healthz (which is fine), or by something else. */
async function portFinding(config: Config): Promise<Finding> {
  const { host, port } = parseHostPort(config.listen);
  const problem = await new Promise<string | undefined>((resolve) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    probe.listen(port, host, () => probe.close(() => resolve(undefined)));
  });
  if (problem === undefined) return { check: "port", status: "ok", message: `${config.listen} is free for serve` };
  if (problem === "EACCES")
    return {
      check: "port",
      status: "fail",
      message: `${config.listen}: ports below 1024 need root or CAP_NET_BIND_SERVICE`,
      fix: "run it with contrib/portcullis.service (AmbientCapabilities=CAP_NET_BIND_SERVICE), or listen on 5000",
    };
  if (problem === "EADDRINUSE" && (await answersHealthz(host, port)))
    return { check: "port", status: "ok", message: `a Portcullis server answers on ${config.listen}` };
  return {
    check: "port",
    status: "fail",
    message: `${config.listen} is taken (${problem}) by something that is not Portcullis`,
    fix: `find it (ss -ltnp 'sport = :${port}'), stop it (a registry:2 still running?), or change listen`,
  };
}

function answersHealthz(host: string, port: number): Promise<boolean> {
  const target = host === "0.0.0.0" || host === "::" || host === "" ? "127.0.0.1" : host;
  return new Promise((resolve) => {
    // Only asks whether the holder of the port is a Portcullis; nothing is sent that trust would protect.
    const req = request({ host: target, port, path: "/healthz", rejectUnauthorized: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}
