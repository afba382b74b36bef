import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listFiles, startRegistryUnderTest, type RegistryUnderTest } from "../support/registry-under-test.js";
import { errorCode, pushBlob, sha256 } from "../support/registry-requests.js";

let registry: RegistryUnderTest;
beforeAll(async () => {
  registry = await startRegistryUnderTest();
});
afterAll(async () => {
  await registry.stop();
});

const url = (path: string) => `${registry.url}${path}`;

async function startUpload(name: string): Promise<string> {
  const res = await fetch(url(`/v2/${name}/blobs/uploads/`), { method: "POST" });
  expect(res.status).toBe(202);
  expect(res.headers.get("docker-upload-uuid")).toBeTruthy();
  expect(res.headers.get("range")).toBe("0-0");
  return res.headers.get("location") as string;
}

function patch(location: string, chunk: Buffer, range?: string, headers: Record<string, string> = {}) {
  return fetch(url(location), {
    method: "PATCH",
    headers: {
      "Content-Type": "application/octet-stream",
      ...(range ? { "Content-Range": range } : {}),
      ...headers,
    },
    body: chunk,
  });
}

async function blobStatus(name: string, digest: string): Promise<number> {
  return (await fetch(url(`/v2/${name}/blobs/${digest}`), { method: "HEAD" })).status;
}

describe("blob uploads", () => {
  it("stores a blob sent in three PATCH chunks with the status read between them", async () => {
    const blob = randomBytes(300_000);
    const parts = [blob.subarray(0, 100_000), blob.subarray(100_000, 200_000), blob.subarray(200_000)];
    let location = await startUpload("chunks/app");
    let offset = 0;
    for (const part of parts) {
      const res = await patch(location, part, `${offset}-${offset + part.length - 1}`);
      expect(res.status).toBe(202);
      offset += part.length;
      expect(res.headers.get("range")).toBe(`0-${offset - 1}`);
      location = res.headers.get("location") as string;

      const status = await fetch(url(location));
      expect(status.status).toBe(204);
      expect(status.headers.get("range")).toBe(`0-${offset - 1}`);
      expect(status.headers.get("location")).toBe(location);
    }
    const digest = sha256(blob);
    const done = await fetch(url(`${location}?digest=${digest}`), { method: "PUT" });
    expect(done.status).toBe(201);
    expect(done.headers.get("docker-content-digest")).toBe(digest);
    expect(done.headers.get("location")).toBe(`/v2/chunks/app/blobs/${digest}`);

    const got = await fetch(url(`/v2/chunks/app/blobs/${digest}`));
    expect(got.status).toBe(200);
    expect(got.headers.get("docker-content-digest")).toBe(digest);
    expect(Buffer.from(await got.arrayBuffer()).equals(blob)).toBe(true);
  });

  it("accepts the last chunk in the body of the closing PUT", async () => {
    const blob = randomBytes(5000);
    const location = await startUpload("chunks/final");
    await patch(location, blob.subarray(0, 1000), "0-999");
    const digest = sha256(blob);
    const res = await fetch(url(`${location}?digest=${digest}`), {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream", "Content-Range": "1000-4999" },
      body: blob.subarray(1000),
    });
    expect(res.status).toBe(201);
    expect(await blobStatus("chunks/final", digest)).toBe(200);
  });

  it("refuses an out-of-order chunk and a retried previous chunk with 416", async () => {
    const location = await startUpload("chunks/order");
    expect((await patch(location, Buffer.alloc(10, 1), "0-9")).status).toBe(202);
    const skipped = await patch(location, Buffer.alloc(10, 2), "20-29");
    expect(skipped.status).toBe(416);
    expect(await errorCode(skipped)).toBe("BLOB_UPLOAD_INVALID");
    const retried = await patch(location, Buffer.alloc(10, 1), "0-9");
    expect(retried.status).toBe(416);
    const status = await fetch(url(location));
    expect(status.headers.get("range")).toBe("0-9");
  });

  it("refuses a Content-Range that does not match the body, and keeps the upload as it was", async () => {
    const location = await startUpload("chunks/mismatch");
    expect((await patch(location, Buffer.alloc(10, 1), "0-9")).status).toBe(202);
    const res = await patch(location, Buffer.alloc(10, 2), "10-29");
    expect(res.status).toBe(416);
    expect(await errorCode(res)).toBe("BLOB_UPLOAD_INVALID");
    expect((await fetch(url(location))).headers.get("range")).toBe("0-9");
    const good = await patch(location, Buffer.alloc(5, 3), "10-14");
    expect(good.status).toBe(202);
    const digest = sha256(Buffer.concat([Buffer.alloc(10, 1), Buffer.alloc(5, 3)]));
    expect((await fetch(url(`${location}?digest=${digest}`), { method: "PUT" })).status).toBe(201);
  });

  it("refuses a wrong digest with DIGEST_INVALID and makes no blob visible", async () => {
    const before = await listFiles(`${registry.root}/docker/registry/v2/blobs`);
    const location = await startUpload("chunks/wrong");
    await patch(location, Buffer.from("real content"));
    const claimed = sha256("other content");
    const res = await fetch(url(`${location}?digest=${claimed}`), { method: "PUT" });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe("DIGEST_INVALID");
    expect(await blobStatus("chunks/wrong", claimed)).toBe(404);
    expect(await blobStatus("chunks/wrong", sha256("real content"))).toBe(404);
    expect(await listFiles(`${registry.root}/docker/registry/v2/blobs`)).toEqual(before);
  });

  it("answers BLOB_UPLOAD_UNKNOWN for an upload id it never issued", async () => {
    const id = "0d6d0e3c-9f4b-4e2a-8d62-1f0b5d1f0e77";
    for (const method of ["GET", "PATCH", "PUT", "DELETE"]) {
      const res = await fetch(url(`/v2/chunks/app/blobs/uploads/${id}?digest=${sha256("x")}`), {
        method,
        ...(method === "PATCH" ? { body: "x" } : {}),
      });
      expect(res.status, method).toBe(404);
      expect(await errorCode(res), method).toBe("BLOB_UPLOAD_UNKNOWN");
    }
  });

  it("lets two concurrent uploads of one blob both succeed and stores it once", async () => {
    const blob = randomBytes(2_000_000);
    const digest = sha256(blob);
    const [a, b] = await Promise.all([
      pushBlob(registry.url, "race/one", blob),
      pushBlob(registry.url, "race/two", blob),
    ]);
    expect(a.digest).toBe(digest);
    expect(b.digest).toBe(digest);
    expect(await blobStatus("race/one", digest)).toBe(200);
    expect(await blobStatus("race/two", digest)).toBe(200);
    const stored = (await listFiles(`${registry.root}/docker/registry/v2/blobs`)).filter((f) =>
      f.includes(digest.slice("sha256:".length)),
    );
    expect(stored).toEqual([`sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data`]);
  });

  it("takes a whole blob in one POST with ?digest=", async () => {
    const res = await fetch(url(`/v2/mono/app/blobs/uploads/?digest=${sha256("monolithic")}`), {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body: "monolithic",
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toBe(`/v2/mono/app/blobs/${sha256("monolithic")}`);
    expect(await blobStatus("mono/app", sha256("monolithic"))).toBe(200);
  });

  it("stores sha512 blobs", async () => {
    const { createHash } = await import("node:crypto");
    const digest = `sha512:${createHash("sha512").update("sha512 blob").digest("hex")}`;
    const res = await fetch(url(`/v2/mono/sha512/blobs/uploads/?digest=${digest}`), {
      method: "POST",
      body: "sha512 blob",
    });
    expect(res.status).toBe(201);
    const got = await fetch(url(`/v2/mono/sha512/blobs/${digest}`));
    expect(await got.text()).toBe("sha512 blob");
  });

  it("cancels an upload with DELETE", async () => {
    const location = await startUpload("chunks/cancel");
    expect((await fetch(url(location), { method: "DELETE" })).status).toBe(204);
    expect((await fetch(url(location))).status).toBe(404);
  });

  it("mounts a blob from another repository, and falls back to an upload when the source lacks it", async () => {
    const { digest } = await pushBlob(registry.url, "mount/source", "shared layer");
    const mounted = await fetch(url(`/v2/mount/target/blobs/uploads/?mount=${digest}&from=mount/source`), {
      method: "POST",
    });
    expect(mounted.status).toBe(201);
    expect(mounted.headers.get("location")).toBe(`/v2/mount/target/blobs/${digest}`);
    expect(await blobStatus("mount/target", digest)).toBe(200);

    const missing = sha256("never pushed");
    const fallback = await fetch(url(`/v2/mount/other/blobs/uploads/?mount=${missing}&from=mount/source`), {
      method: "POST",
    });
    expect(fallback.status).toBe(202);
    expect(fallback.headers.get("location")).toMatch(/^\/v2\/mount\/other\/blobs\/uploads\/.+/);
  });
});

describe("blob reads", () => {
  it("serves byte ranges with 206 and refuses unsatisfiable ones with 416", async () => {
    const { digest } = await pushBlob(registry.url, "ranges/app", "0123456789");
    const part = await fetch(url(`/v2/ranges/app/blobs/${digest}`), { headers: { Range: "bytes=2-5" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe("bytes 2-5/10");
    expect(await part.text()).toBe("2345");
    const tail = await fetch(url(`/v2/ranges/app/blobs/${digest}`), { headers: { Range: "bytes=-3" } });
    expect(await tail.text()).toBe("789");
    const beyond = await fetch(url(`/v2/ranges/app/blobs/${digest}`), { headers: { Range: "bytes=20-30" } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get("content-range")).toBe("bytes */10");
  });

  it("answers HEAD with the size and digest and no body", async () => {
    const { digest } = await pushBlob(registry.url, "ranges/head", "twelve bytes");
    const res = await fetch(url(`/v2/ranges/head/blobs/${digest}`), { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe("12");
    expect(res.headers.get("docker-content-digest")).toBe(digest);
  });

  it("does not show a blob to a repository it was never pushed to", async () => {
    const { digest } = await pushBlob(registry.url, "scoped/a", "only in a");
    const res = await fetch(url(`/v2/scoped/b/blobs/${digest}`));
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe("BLOB_UNKNOWN");
  });
});
