import { readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { startRegistryServer } from "../../src/registry/server.js";
import { makeTempDir } from "./temp-dir.js";

export interface RegistryUnderTest {
  url: string;
  root: string;
  stop(): Promise<void>;
}

/** The built-in registry on a free loopback port over a fresh temp root. */
export async function startRegistryUnderTest(): Promise<RegistryUnderTest> {
  const dir = await makeTempDir("portcullis-registry-");
  const server = await startRegistryServer({ root: dir.path, listen: "127.0.0.1:0" });
  return {
    url: server.url,
    root: dir.path,
    async stop() {
      await server.close();
      await dir.stop();
    },
  };
}

/** Every file under a directory, relative to it, sorted: a snapshot to prove a request wrote nothing. */
export async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();
}
