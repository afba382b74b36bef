import { setTimeout as sleep } from "node:timers/promises";

/**
 * What `portcullis serve` recorded, read back from its pino JSON lines (start it with
 * `env: { PORTCULLIS_LOG_LEVEL: "info" }`, or these lines are not written).
 */

/** One `"token issued"` line: which grant a client used, for whom, and what it asked for and got. */
export interface TokenIssued {
  grant: "basic" | "password" | "refresh_token" | "anonymous";
  subject: string;
  source?: string;
  requested: string[];
  granted: string[];
}

/** One `"request"` line: every HTTP exchange the gateway finished. */
export interface RequestLogged {
  method: string;
  path: string;
  status: number;
}

function jsonLines(output: string): Record<string, unknown>[] {
  const entries: Record<string, unknown>[] = [];
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      entries.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // A line cut short while the server is still writing it.
    }
  }
  return entries;
}

export function tokensIssued(output: string): TokenIssued[] {
  return jsonLines(output)
    .filter((entry) => entry.msg === "token issued")
    .map((entry) => entry as unknown as TokenIssued);
}

export function requestsLogged(output: string): RequestLogged[] {
  return jsonLines(output)
    .filter((entry) => entry.msg === "request")
    .map((entry) => entry as unknown as RequestLogged);
}

/**
 * Marks a point in a growing server log, so a test can look at only what one client did after it:
 * `const mark = await logMark(serve.output); …; const lines = await mark.since();`
 * A "request" line is written when the response has finished, which can be just after the client has
 * seen the answer and exited: pass `until` to wait (up to `timeoutMs`) for the line a test expects.
 */
export async function logMark(
  output: () => Promise<string>,
): Promise<{ since(until?: (logged: string) => boolean, timeoutMs?: number): Promise<string> }> {
  const offset = (await output()).length;
  return {
    async since(until, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const logged = (await output()).slice(offset);
        if (until === undefined || until(logged) || Date.now() > deadline) return logged;
        await sleep(50);
      }
    },
  };
}

/** An `until` for `since`: the log holds a request line with this method, path and status. */
export function hasRequest(method: string, path: string, status: number): (logged: string) => boolean {
  return (logged) =>
    requestsLogged(logged).some(
      (request) => request.method === method && request.path === path && request.status === status,
    );
}

/** Every action granted on `repository` across `issued`, sorted: `["pull", "push"]`. */
export function grantedActions(issued: readonly TokenIssued[], repository: string): string[] {
  const actions = new Set<string>();
  for (const scope of issued.flatMap((token) => token.granted)) {
    const [type, ...rest] = scope.split(":");
    const list = rest.pop() ?? "";
    if (type === "repository" && rest.join(":") === repository)
      for (const action of list.split(",")) actions.add(action);
  }
  return [...actions].sort();
}
