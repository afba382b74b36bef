import { createAuditLog } from "../audit/audit-log.js";
import { signingKeyOptions } from "../auth/from-config.js";
import { rotateSigningKey } from "../auth/token/signing-keys.js";
import { readSigningCa } from "../pki/tls-material.js";
import { adminActor } from "./admin-actor.js";
import { parseArgs } from "./args.js";
import { UsageError } from "./errors.js";
import { commonFlags, adminConfigFromArgs } from "./config-args.js";
import { missingState } from "./server-state.js";

const tokenUsage = "portcullis token rotate";

/**
 * `token rotate`: a new token-signing key signs from now on; the old one keeps verifying until the last
 * token it signed has expired. A running server picks the change up within seconds.
 */
export async function runToken(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, [...commonFlags]);
  if (args.positionals.join(" ") !== "rotate") throw new UsageError(`usage: ${tokenUsage}`);
  const config = await adminConfigFromArgs(args);
  const ca = await readSigningCa(config);
  if (!ca) throw missingState("the CA (ca.crt and ca.key)", config.certs, "--certs DIR");
  const keyring = await rotateSigningKey(signingKeyOptions(config, ca));
  const audit = createAuditLog({ dataDir: config.data });
  audit.record({
    action: "key.rotate",
    result: "success",
    actor: adminActor(),
    detail: { kid: keyring.current.kid, alg: keyring.current.alg },
  });
  audit.close();
  process.stdout.write(
    `signing with the new key ${keyring.current.kid}; ${keyring.verifying.length - 1} older key(s) still verify until their tokens expire\n`,
  );
}
