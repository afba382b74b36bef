import { unwatchFile, watchFile } from "node:fs";

/** Calls `onChange` whenever the config file is written, created or removed. Returns a function that stops. */
export function watchConfigFile(path: string, onChange: () => void, intervalMs = 1000): () => void {
  const listener = (now: { mtimeMs: number; size: number }, before: { mtimeMs: number; size: number }) => {
    if (now.mtimeMs !== before.mtimeMs || now.size !== before.size) onChange();
  };
  watchFile(path, { interval: intervalMs }, listener);
  return () => unwatchFile(path, listener);
}
