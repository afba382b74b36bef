import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, prettyLine, requestLogLevel } from "../../src/log.js";

describe("logs a person reads", () => {
  it("turns a JSON line into time, level, message and fields", () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
      msg: "slow",
      ms: 900,
      path: "/v2/",
    });
    expect(prettyLine(line)).toBe("03:04:05.678 WARN  slow ms=900 path=/v2/");
  });

  it("leaves a line that is not JSON as it is", () => {
    expect(prettyLine("plain text")).toBe("plain text");
  });

  it("writes readable lines when asked, still redacting secrets", async () => {
    const out: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        out.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ destination: sink, pretty: true });
    logger.info({ user: "alice", password: "hunter2" }, "signed in");
    await new Promise((resolve) => setImmediate(resolve));
    expect(out.join("")).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}signed in user=alice password=\[redacted\]\n$/);
  });

  it.each([
    ["/healthz", "debug"],
    ["/readyz", "debug"],
    ["/metrics", "debug"],
    ["/v2/", "info"],
    ["/token", "info"],
  ])("logs a request for %s at %s", (path, level) => {
    expect(requestLogLevel(path)).toBe(level);
  });
});
