import { runCommand, type CommandResult } from "./command.js";
import { cliPath, type PortcullisServe } from "./portcullis-serve.js";

/**
 * `portcullis user ACTION NAME` (add, passwd, rm) on the users of a running `serve`, as an operator runs it
 * on the server host: same `--certs` and `--data` (and `--config`, when given), the password on stdin.
 */
export function portcullisUser(
  serve: Pick<PortcullisServe, "certsDir" | "dataDir">,
  action: "add" | "passwd" | "rm",
  name: string,
  options: { password?: string; config?: string } = {},
): Promise<CommandResult> {
  const config = options.config === undefined ? [] : ["--config", options.config];
  return runCommand(
    process.execPath,
    [cliPath, "user", action, name, "--certs", serve.certsDir, "--data", serve.dataDir, ...config],
    { input: options.password === undefined ? "" : `${options.password}\n` },
  );
}
