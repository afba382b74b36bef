import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistryUnderTest, type RegistryUnderTest } from "../support/registry-under-test.js";
import { errorCode, pushImage } from "../support/registry-requests.js";

let registry: RegistryUnderTest;
beforeAll(async () => {
  registry = await startRegistryUnderTest();
});
afterAll(async () => {
  await registry.stop();
});

/** Follows `Link: <…>; rel="next"` from `first` and collects `field` from every page. */
async function walkPages(first: string, field: "repositories" | "tags"): Promise<{ items: string[]; pages: number }> {
  const items: string[] = [];
  let next: string | undefined = first;
  let pages = 0;
  while (next) {
    const res: Response = await fetch(`${registry.url}${next}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, string[]>;
    items.push(...(body[field] ?? []));
    pages++;
    next = /^<([^>]+)>;\s*rel="next"$/.exec(res.headers.get("link") ?? "")?.[1];
  }
  return { items, pages };
}

describe("pagination", () => {
  it("walks a catalog of 25 repositories ten at a time, in order, by following Link headers", async () => {
    const names = Array.from({ length: 25 }, (_, i) => `paged/repo-${String(i).padStart(2, "0")}`);
    for (const name of [...names].reverse()) await pushImage(registry.url, name, "v1");
    const { items, pages } = await walkPages("/v2/_catalog?n=10", "repositories");
    expect(pages).toBe(3);
    expect(items.filter((n) => n.startsWith("paged/"))).toEqual(names);
  });

  it("walks 25 tags ten at a time, in order, by following Link headers", async () => {
    const tags = Array.from({ length: 25 }, (_, i) => `t${String(i).padStart(2, "0")}`);
    const first = await pushImage(registry.url, "paged/tags", "base");
    for (const tag of tags) {
      const res = await fetch(`${registry.url}/v2/paged/tags/manifests/${tag}`, {
        method: "PUT",
        headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
        body: first.content,
      });
      expect(res.status).toBe(201);
    }
    const { items, pages } = await walkPages("/v2/paged/tags/tags/list?n=10", "tags");
    expect(items).toEqual(["base", ...tags]);
    expect(pages).toBe(3);
  });

  it("honours last without n, and n=0 gives an empty page", async () => {
    const after = await fetch(`${registry.url}/v2/paged/tags/tags/list?last=t22`);
    expect(((await after.json()) as { tags: string[] }).tags).toEqual(["t23", "t24"]);
    const none = await fetch(`${registry.url}/v2/paged/tags/tags/list?n=0`);
    expect(((await none.json()) as { tags: string[] }).tags).toEqual([]);
  });

  it("answers NAME_UNKNOWN for the tags of a repository that does not exist", async () => {
    const res = await fetch(`${registry.url}/v2/no/such/repo/tags/list`);
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe("NAME_UNKNOWN");
  });
});

describe("deletes", () => {
  it("deletes a tag: it no longer lists, and the manifest stays pullable by digest", async () => {
    const { digest } = await pushImage(registry.url, "del/tag", "v1");
    await pushImage(registry.url, "del/tag", "v2");
    const res = await fetch(`${registry.url}/v2/del/tag/manifests/v1`, { method: "DELETE" });
    expect(res.status).toBe(202);
    const list = (await (await fetch(`${registry.url}/v2/del/tag/tags/list`)).json()) as { tags: string[] };
    expect(list.tags).toEqual(["v2"]);
    expect((await fetch(`${registry.url}/v2/del/tag/manifests/v1`)).status).toBe(404);
    const byDigest = await fetch(`${registry.url}/v2/del/tag/manifests/${digest}`);
    expect(byDigest.status).toBe(200);
    expect(byDigest.headers.get("docker-content-digest")).toBe(digest);
  });

  it("deletes a manifest by digest, and with it the tags that pointed at it", async () => {
    const { digest } = await pushImage(registry.url, "del/digest", "v1");
    const res = await fetch(`${registry.url}/v2/del/digest/manifests/${digest}`, { method: "DELETE" });
    expect(res.status).toBe(202);
    const gone = await fetch(`${registry.url}/v2/del/digest/manifests/${digest}`);
    expect(gone.status).toBe(404);
    expect(await errorCode(gone)).toBe("MANIFEST_UNKNOWN");
    const list = (await (await fetch(`${registry.url}/v2/del/digest/tags/list`)).json()) as { tags: string[] };
    expect(list.tags).toEqual([]);
  });

  it("deletes a blob from a repository", async () => {
    const pushed = await pushImage(registry.url, "del/blob", "v1");
    const layer = (JSON.parse(pushed.content) as { layers: { digest: string }[] }).layers[0]!.digest;
    const res = await fetch(`${registry.url}/v2/del/blob/blobs/${layer}`, { method: "DELETE" });
    expect(res.status).toBe(202);
    const gone = await fetch(`${registry.url}/v2/del/blob/blobs/${layer}`, { method: "HEAD" });
    expect(gone.status).toBe(404);
    const again = await fetch(`${registry.url}/v2/del/blob/blobs/${layer}`, { method: "DELETE" });
    expect(await errorCode(again)).toBe("BLOB_UNKNOWN");
  });

  it("answers MANIFEST_UNKNOWN when deleting a tag that does not exist", async () => {
    await pushImage(registry.url, "del/missing", "v1");
    const res = await fetch(`${registry.url}/v2/del/missing/manifests/nope`, { method: "DELETE" });
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe("MANIFEST_UNKNOWN");
  });
});
