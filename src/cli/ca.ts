import { X509Certificate } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { createAuditLog } from "../audit/audit-log.js";
import { checkHostName } from "../config/names.js";
import { parseHostPort } from "../http/listen-address.js";
import { certPaths, ensureTlsMaterial, readTlsMaterial, wantedNames } from "../pki/tls-material.js";
import { adminActor } from "./admin-actor.js";
import { hasSwitch, listFlag, parseArgs, stringFlag } from "./args.js";
import { reachBanner } from "./banner.js";
import { UsageError } from "./errors.js";
import { commonFlags, adminConfigFromArgs } from "./config-args.js";
import { missingState } from "./server-state.js";

const caUsage = "portcullis ca show | export [--der] [--out FILE] | renew [--name NAME]...";

/** `ca show`, `ca export` and `ca renew`, acting on the certs directory the server uses. */
export async function runCa(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags, "out", "name"], ["der"]);
  const [action, ...extra] = args.positionals;
  if (extra.length > 0 || !action) throw new UsageError(`usage: ${caUsage}`);
  const config = await adminConfigFromArgs(args);
  const existing = async () => {
    const material = await readTlsMaterial(config);
    if (!material) throw missingState("the CA (ca.crt)", config.certs, "--certs DIR");
    return material;
  };

  switch (action) {
    case "show": {
      const material = await existing();
      const listen = parseHostPort(config.listen);
      const server = material.certChainPem ? new X509Certificate(material.certChainPem) : undefined;
      process.stdout.write(
        [
          `CA:                 ${material.caCertPem ? new X509Certificate(material.caCertPem).subject.replace(/\n/g, ", ") : "(unknown: tls.server has no chain)"}`,
          `server certificate: ${server ? `valid until ${new Date(server.validTo).toISOString()}` : "none yet"}`,
          `covers:             ${material.names.join(", ")}`,
        ].join("\n") + "\n",
      );
      process.stdout.write(
        reachBanner({
          port: listen.port,
          listenHost: listen.host,
          names: material.names,
          caCertPem: material.caCertPem,
          caFingerprint: material.caFingerprint,
          upstream: config.upstream ?? `built-in, storage in ${config.data}`,
          actions: [],
          warnings: material.warnings,
        }),
      );
      return;
    }
    case "export": {
      const material = await existing();
      if (!material.caCertPem)
        throw new UsageError("the server certificate (tls.server) came without a chain, so there is no CA to export");
      const content = hasSwitch(args, "der") ? new X509Certificate(material.caCertPem).raw : material.caCertPem;
      const out = stringFlag(args, "out");
      if (out) await writeFile(out, content, { mode: 0o644 });
      else process.stdout.write(content);
      return;
    }
    case "renew": {
      if (config.tls.server)
        throw new UsageError("tls.server is set: that certificate is managed outside Portcullis, renew it there");
      await existing();
      const added = listFlag(args, "name").map((name) => {
        const problem = checkHostName(name);
        if (problem) throw new UsageError(`--name ${JSON.stringify(name)}: ${problem}`);
        return name.toLowerCase();
      });
      const names = [...new Set([...wantedNames(config), ...added])];
      const material = await ensureTlsMaterial({ config, forceRenew: true, names });
      const audit = createAuditLog({ dataDir: config.data });
      audit.record({
        action: "ca.renew",
        result: "success",
        actor: adminActor(),
        detail: { names, notAfter: material.notAfter.toISOString(), certificate: certPaths(config.certs).serverCert },
      });
      audit.close();
      for (const action of material.actions) process.stdout.write(`${action}\n`);
      process.stdout.write(
        "a running server picks the new certificate up by itself; open connections keep the old one\n",
      );
      return;
    }
    default:
      throw new UsageError(`unknown ca action "${action}"\nusage: ${caUsage}`);
  }
}
