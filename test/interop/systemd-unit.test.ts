import { chmod, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { runCommand } from "../support/command.js";
import { cliPath } from "../support/portcullis-serve.js";
import { requireTool } from "../support/tools.js";

const unit = resolve(import.meta.dirname, "../../contrib/portcullis.service");
/** Where the unit expects the CLI, as `npm install -g` puts it. */
const installed = "/usr/local/bin/portcullis";

describe("the systemd unit", () => {
  let createdLauncher = false;

  beforeAll(async () => {
    requireTool("systemd-analyze", "systemd");
    // systemd-analyze verify checks that ExecStart's program exists: install the built CLI where the unit
    // (and `npm install -g`) has it, unless something is there already, and take away only what we put.
    if (!existsSync(installed)) {
      await writeFile(installed, `#!/bin/sh\nexec "${process.execPath}" "${cliPath}" "$@"\n`);
      await chmod(installed, 0o755);
      createdLauncher = true;
    }
  });

  afterAll(async () => {
    if (createdLauncher) await rm(installed, { force: true });
  });

  it("passes systemd-analyze verify", async () => {
    const { stdout, stderr } = await runCommand(requireTool("systemd-analyze", "systemd"), ["verify", unit]);
    expect(`${stdout}${stderr}`).toBe("");
  });

  it.each([
    ["its own user", /^User=portcullis$/m],
    ["a read-only system", /^ProtectSystem=strict$/m],
    ["write access to its state only", /^ReadWritePaths=\/var\/lib\/portcullis$/m],
    ["the right to bind port 443", /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m],
    ["no new privileges", /^NoNewPrivileges=yes$/m],
    ["a reload that is SIGHUP", /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m],
  ])("runs Portcullis with %s", (_what, line) => {
    expect(readFileSync(unit, "utf8")).toMatch(line);
  });
});
