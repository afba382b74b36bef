import type { IncomingMessage, ServerResponse } from "node:http";
import { sendText } from "./responses.js";

export type ReadinessCheck = () => Promise<void>;

const checkTimeoutMs = 3000;

/** `/healthz`: the process answers. `/readyz`: every dependency check passes (each bounded in time). */
export function createHealth(checks: Readonly<Record<string, ReadinessCheck>>) {
  return {
    healthz(_req: IncomingMessage, res: ServerResponse): void {
      sendText(res, 200, "application/json", JSON.stringify({ status: "ok" }));
    },

    async readyz(_req: IncomingMessage, res: ServerResponse): Promise<void> {
      const results = await Promise.all(
        Object.entries(checks).map(async ([name, check]) => {
          try {
            await withTimeout(check(), checkTimeoutMs, `${name} did not answer within ${checkTimeoutMs} ms`);
            return [name, "ok"] as const;
          } catch (error) {
            return [name, (error as Error).message || "failed"] as const;
          }
        }),
      );
      const ready = results.every(([, outcome]) => outcome === "ok");
      sendText(
        res,
        ready ? 200 : 503,
        "application/json",
        JSON.stringify({ status: ready ? "ok" : "unavailable", checks: Object.fromEntries(results) }),
      );
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
