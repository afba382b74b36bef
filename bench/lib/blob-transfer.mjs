// One blob pushed with the streamed OCI flow (POST, one PATCH, PUT ?digest=) and pulled back checking its digest.

import { createHash } from "node:crypto";
import fs from "node:fs";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { expectStatus, request } from "./http-client.mjs";
import { MiB } from "./units.mjs";

// The next URL of the upload. It must stay on the URL the client used: a Location pointing elsewhere
// (the registry behind the proxy, say) would have the rest of the upload measure another path.
function location(res, base, method, url) {
  const value = res.headers.location;
  if (!value) throw new Error(`${method} ${url} → ${res.status} without a Location header`);
  const next = new URL(value, base);
  if (next.origin !== new URL(base).origin) {
    throw new Error(`${method} ${url} → ${res.status} with Location ${value}, which leaves ${base}`);
  }
  return next.toString();
}

/**
 * Pushes `blob` ({ file, sizeBytes, digest }) to `repository` at `baseUrl`, sending `auth` headers on every
 * request and a Content-Length on the PATCH when `contentLength` (chunked otherwise).
 */
export async function pushBlob({ baseUrl, repository, blob, contentLength, agent, auth = {} }) {
  const { file, sizeBytes, digest } = blob;
  const started = performance.now();

  const postUrl = `${baseUrl}/v2/${repository}/blobs/uploads/`;
  const postHeaders = { "Content-Length": "0", ...auth };
  const post = await request("POST", postUrl, { agent, headers: postHeaders });
  expectStatus(post, 202, "POST", postUrl, postHeaders);
  const patchUrl = location(post, baseUrl, "POST", postUrl);

  const patchStarted = performance.now();
  const patchHeaders = { "Content-Type": "application/octet-stream", ...auth };
  if (contentLength) patchHeaders["Content-Length"] = String(sizeBytes);
  const patch = await request("PATCH", patchUrl, {
    agent,
    headers: patchHeaders,
    body: fs.createReadStream(file, { highWaterMark: MiB }),
  });
  expectStatus(patch, 202, "PATCH", patchUrl, patchHeaders);
  const range = patch.headers.range;
  if (range !== `0-${sizeBytes - 1}`) {
    console.warn(`  note: PATCH answered Range: ${range ?? "(none)"}, expected 0-${sizeBytes - 1}`);
  }
  const putBase = location(patch, baseUrl, "PATCH", patchUrl);

  const putStarted = performance.now();
  const putUrl = new URL(putBase);
  putUrl.searchParams.set("digest", digest);
  const putHeaders = { "Content-Length": "0", ...auth };
  const put = await request("PUT", putUrl.toString(), { agent, headers: putHeaders });
  expectStatus(put, 201, "PUT", putUrl.toString(), putHeaders);
  if (put.headers["docker-content-digest"] && put.headers["docker-content-digest"] !== digest) {
    throw new Error(`PUT answered Docker-Content-Digest ${put.headers["docker-content-digest"]}, pushed ${digest}`);
  }

  const ended = performance.now();
  // The phases show where the time goes: the PATCH is the transfer, the PUT is the server's
  // digest check and commit (a server that fsyncs or re-reads the data pays for it here).
  return {
    seconds: (ended - started) / 1000,
    patchSeconds: (putStarted - patchStarted) / 1000,
    putSeconds: (ended - putStarted) / 1000,
    tls: patch.tls,
  };
}

/** Pulls `blob` back from `repository`, hashing it as it streams in; resolves to the seconds it took. */
export async function pullBlob({ baseUrl, repository, blob, agent, auth = {} }) {
  const { sizeBytes, digest } = blob;
  const started = performance.now();
  const url = `${baseUrl}/v2/${repository}/blobs/${digest}`;
  const res = await request("GET", url, {
    agent,
    headers: auth,
    onResponse: async (body) => {
      const hash = createHash("sha256");
      let length = 0;
      await pipeline(
        body,
        new Writable({
          highWaterMark: MiB,
          write(chunk, _enc, done) {
            hash.update(chunk);
            length += chunk.length;
            done();
          },
        }),
      );
      return { digest: `sha256:${hash.digest("hex")}`, length };
    },
  });
  expectStatus(res, 200, "GET", url, auth);
  const seconds = (performance.now() - started) / 1000;
  if (res.value.length !== sizeBytes || res.value.digest !== digest) {
    throw new Error(
      `GET ${url} returned ${res.value.length} bytes with ${res.value.digest}, pushed ${sizeBytes} bytes with ${digest}`,
    );
  }
  return seconds;
}
