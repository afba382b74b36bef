import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/loader.js";
import { makeTempDir, type TempDir } from "../support/temp-dir.js";

let dir: TempDir;
beforeAll(async () => {
  dir = await makeTempDir("portcullis-config-");
});
afterAll(async () => {
  await dir.stop();
});

async function configFile(text: string): Promise<string> {
  const path = join(dir.path, `c-${Math.random()}.yaml`);
  await writeFile(path, text);
  return path;
}

describe("loading the configuration", () => {
  it("starts from the defaults when there is no file at all", async () => {
    const config = await loadConfig({ cwd: dir.path, env: {} });
    expect(config.listen).toBe("0.0.0.0:5000");
    expect(config.data).toBe(join(dir.path, "data"));
    expect(config.certs).toBe(join(dir.path, "certs"));
    expect(Object.isFrozen(config.tls)).toBe(true);
  });

  it("takes relative paths in a file from the file's directory", async () => {
    const file = await configFile("data: store\ntls:\n  names: [registry.example]\n");
    const config = await loadConfig({ file, cwd: "/", env: {} });
    expect(config.data).toBe(join(dir.path, "store"));
    expect(config.tls.names).toEqual(["registry.example"]);
  });

  it("lets PORTCULLIS_* variables override the file, nested keys included", async () => {
    const file = await configFile("listen: 127.0.0.1:5000\n");
    const config = await loadConfig({
      file,
      env: {
        PORTCULLIS_LISTEN: "127.0.0.1:6000",
        PORTCULLIS_TLS_RENEW_BEFORE_DAYS: "10",
        PORTCULLIS_TLS_NAMES: "[a.example, 10.0.0.1]",
      },
    });
    expect(config.listen).toBe("127.0.0.1:6000");
    expect(config.tls.renewBeforeDays).toBe(10);
    expect(config.tls.names).toEqual(["a.example", "10.0.0.1"]);
  });

  it("lets flags override everything", async () => {
    const config = await loadConfig({
      cwd: dir.path,
      env: { PORTCULLIS_LISTEN: "127.0.0.1:6000" },
      overrides: { listen: "127.0.0.1:7000" },
    });
    expect(config.listen).toBe("127.0.0.1:7000");
  });

  it.each([
    ["an unknown key", "listn: 1.2.3.4:5\n", /listn: unknown key/],
    ["an unknown nested key", "tls:\n  nmes: [x]\n", /tls\.nmes: unknown key/],
    ["a value of the wrong form", "listen: everywhere\n", /listen: expected HOST:PORT/],
    ["a value of the wrong type", "tls:\n  renewBeforeDays: soon\n", /tls\.renewBeforeDays: Expected number/],
    ["a file that is not a mapping", "- a\n- b\n", /must hold a YAML mapping/],
  ])("refuses %s, naming the key", async (_what, text, message) => {
    const file = await configFile(text);
    await expect(loadConfig({ file, env: {} })).rejects.toThrow(message);
    await expect(loadConfig({ file, env: {} })).rejects.toBeInstanceOf(ConfigError);
  });

  it("refuses a --config file that does not exist", async () => {
    await expect(loadConfig({ file: join(dir.path, "nope.yaml"), env: {} })).rejects.toThrow(/does not exist/);
  });
});
