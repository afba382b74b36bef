import { X509Certificate } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { parseHostPort } from "../http/listen-address.js";
import { ensureTlsMaterial, wantedNames } from "../pki/tls-material.js";
import { hasSwitch, listFlag, parseArgs, stringFlag } from "./args.js";
import { startBanner } from "./banner.js";
import { UsageError } from "./errors.js";
import { commonFlags, configFromArgs } from "./config-args.js";

export const caUsage = "portcullis ca show | export [--der] [--out FILE] | renew [--name NAME]...";

/** `ca show`, `ca export` and `ca renew`, acting on the certs directory the server uses. */
export async function runCa(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags, "out", "name"], ["der"]);
  const [action, ...extra] = args.positionals;
  if (extra.length > 0 || !action) throw new UsageError(`usage: ${caUsage}`);
  const config = await configFromArgs(args);

  switch (action) {
    case "show": {
      const material = await ensureTlsMaterial({ config });
      const listen = parseHostPort(config.listen);
      const server = new X509Certificate(material.certChainPem);
      process.stdout.write(
        [
          `CA:                 ${material.caCertPem ? new X509Certificate(material.caCertPem).subject.replace(/\n/g, ", ") : "(unknown: tls.server has no chain)"}`,
          `server certificate: valid until ${new Date(server.validTo).toISOString()}`,
          `covers:             ${material.names.join(", ")}`,
        ].join("\n") + "\n",
      );
      process.stdout.write(
        startBanner({
          port: listen.port,
          listenHost: listen.host,
          names: material.names,
          caCertPem: material.caCertPem,
          caFingerprint: material.caFingerprint,
          upstream: config.upstream ?? `built-in, storage in ${config.data}`,
          actions: material.actions,
          warnings: material.warnings,
        }),
      );
      return;
    }
    case "export": {
      const material = await ensureTlsMaterial({ config });
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
      const names = [...new Set([...wantedNames(config), ...listFlag(args, "name").map((n) => n.toLowerCase())])];
      const material = await ensureTlsMaterial({ config, forceRenew: true, names });
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
