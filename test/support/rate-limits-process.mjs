// A gateway-like process holding its own createRateLimits, for tests that need two processes sharing one
// Redis. Plain node cannot import .ts (Node 20 has no --experimental-strip-types), so this imports the
// compiled module from dist/: `npm test` runs tsc before vitest, and by hand run `npm run build` first.
//
// argv[2]: JSON {settings, redisUrl, keyPrefix}. Prints {"ready":true} once Redis answers, then reads one
// JSON call per line from stdin, {"id","method","args"}, and answers each with one line {"id","result"} or
// {"id","error"}. "close" closes the limits and exits.
import { createInterface } from "node:readline";
import { createRateLimits } from "../../dist/gateway/rate-limits.js";

const { settings, redisUrl, keyPrefix } = JSON.parse(process.argv[2]);
const limits = createRateLimits(settings, { redisUrl, keyPrefix });
const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

if (!(await limits.ready(10_000))) {
  send({ ready: false });
  process.exit(1);
}
send({ ready: true });

for await (const line of createInterface({ input: process.stdin })) {
  const { id, method, args } = JSON.parse(line);
  try {
    const result = await limits[method](...args);
    send({ id, result: result ?? null });
  } catch (error) {
    send({ id, error: String(error) });
  }
  if (method === "close") process.exit(0);
}
await limits.close();
