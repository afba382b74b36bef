import { describe, expect, it } from "vitest";
import { createTokenCache } from "../../src/upstream/token-cache.js";

function fakeService() {
  let clock = 0;
  const fetched: string[] = [];
  const cache = createTokenCache({
    fetch: (scope) => {
      fetched.push(scope);
      return Promise.resolve({ token: `token-${fetched.length}`, expiresAt: clock + 1000 });
    },
    now: () => clock,
  });
  return { cache, fetched, advance: (ms: number) => (clock += ms) };
}

describe("the token cache of an upstream", () => {
  it("shares one fetch among concurrent requests for a scope, and reuses the token until it expires", async () => {
    const { cache, fetched, advance } = fakeService();

    const tokens = await Promise.all([cache.get("repository:a:pull"), cache.get("repository:a:pull")]);
    expect(tokens).toEqual(["token-1", "token-1"]);
    advance(999);
    expect(await cache.get("repository:a:pull")).toBe("token-1");
    advance(1);
    expect(await cache.get("repository:a:pull")).toBe("token-2");
    expect(fetched).toEqual(["repository:a:pull", "repository:a:pull"]);
  });

  it("fetches again after a 401 invalidated the token, but not when a newer one already replaced it", async () => {
    const { cache, fetched } = fakeService();
    const first = await cache.get("s");

    cache.invalidate("s", first);
    const second = await cache.get("s");
    cache.invalidate("s", first);

    expect(await cache.get("s")).toBe(second);
    expect(fetched).toHaveLength(2);
  });

  it("among a thousand scopes, fetches lapsed tokens again and keeps serving the live one", async () => {
    const { cache, fetched, advance } = fakeService();
    for (let i = 0; i < 1000; i++) await cache.get(`repository:r${i}:pull`);
    advance(2000);
    await cache.get("repository:live:pull");
    const before = fetched.length;

    expect(await cache.get("repository:live:pull")).toBe(`token-${before}`);
    await cache.get("repository:r0:pull");
    expect(fetched.length).toBe(before + 1);
  });
});
