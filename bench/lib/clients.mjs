// The client programs the cases run: skopeo for images, curl for one blob, ab for request rates.

import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { makeTempDir, removeTempDir } from "./cleanup.mjs";
import { runCommand } from "./run-command.mjs";

// skopeo remembers which registry holds which blob and then mounts or skips instead of sending it; a copy
// that finds an entry from an earlier round moves no bytes at all. Root's file, and a user's.
const blobInfoCaches = [
  "/var/lib/containers/cache/blob-info-cache-v1.boltdb",
  path.join(os.homedir(), ".local/share/containers/cache/blob-info-cache-v1.boltdb"),
];

function forgetBlobInfo() {
  for (const file of blobInfoCaches) fs.rmSync(file, { force: true });
}

const imageRef = (target, repository) => `docker://${new URL(target.url).host}/${repository}:latest`;

/**
 * `skopeo copy` of `image` (its `dir:` layout) to `repository` at `target` ({ url, caDir, user }), digests
 * preserved; resolves to the seconds it took.
 */
export async function skopeoPush(image, target, repository) {
  forgetBlobInfo();
  const { seconds } = await runCommand("skopeo", [
    "copy",
    "--quiet",
    "--preserve-digests",
    "--dest-cert-dir",
    target.caDir,
    "--dest-creds",
    `${target.user.name}:${target.user.password}`,
    `dir:${image.dir}`,
    imageRef(target, repository),
  ]);
  return seconds;
}

/** What a pulled `dir:` holds: bytes of the blobs (every file but manifest.json and version). */
async function pulledBytes(dir) {
  let bytes = 0;
  for (const name of await fsp.readdir(dir)) {
    if (name === "manifest.json" || name === "version") continue;
    bytes += (await fsp.stat(path.join(dir, name))).size;
  }
  return bytes;
}

/**
 * `clients` concurrent `skopeo copy` of `repository` from `target` to dirs on /dev/shm (so the client's disk is
 * not what is measured), each checked to hold all of `image`'s bytes and then removed; resolves to the
 * wall-clock seconds from the first start to the last end.
 */
export async function skopeoPull(image, target, repository, clients = 1) {
  forgetBlobInfo();
  const base = fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();
  const dirs = await Promise.all(Array.from({ length: clients }, () => makeTempDir("bench-pull-", base)));
  try {
    const started = performance.now();
    await Promise.all(
      dirs.map((dir) =>
        runCommand("skopeo", [
          "copy",
          "--quiet",
          "--preserve-digests",
          "--src-cert-dir",
          target.caDir,
          "--src-creds",
          `${target.user.name}:${target.user.password}`,
          imageRef(target, repository),
          // skopeo refuses to write into an existing dir that is not its own layout; a fresh subdir it makes.
          `dir:${path.join(dir, "image")}`,
        ]),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    for (const dir of dirs) {
      const got = await pulledBytes(path.join(dir, "image"));
      if (got !== image.bytes)
        throw new Error(`skopeo pulled ${got} bytes of ${repository} into ${dir}, expected ${image.bytes}`);
    }
    return seconds;
  } finally {
    await Promise.all(dirs.map((dir) => removeTempDir(dir)));
  }
}

const curlWrite = "%{http_code} %{size_download} %{size_upload} %{time_total} %{http_version}";

function parseCurl(stdout) {
  const [status, down, up, seconds, httpVersion] = stdout.trim().split(" ");
  return { status: Number(status), down: Number(down), up: Number(up), seconds: Number(seconds), httpVersion };
}

/** One `curl` of `url` trusting `caFile`, its body to /dev/null; resolves to what `-w` reported. */
async function curl(url, caFile, args) {
  const { stdout } = await runCommand("curl", [
    "-sS",
    "--cacert",
    caFile,
    ...args,
    "-o",
    "/dev/null",
    "-w",
    curlWrite,
    url,
  ]);
  return parseCurl(stdout);
}

/** `curl` GET of `url` to /dev/null; resolves to `{ seconds, bytes, httpVersion }` as curl counts them. */
export async function curlGet(url, { caFile, authorization }) {
  const r = await curl(url, caFile, authorization ? ["-H", `Authorization: ${authorization}`] : []);
  if (r.status !== 200) throw new Error(`curl GET ${url} answered ${r.status}`);
  return { seconds: r.seconds, bytes: r.down, httpVersion: r.httpVersion };
}

/**
 * `curl` PUT of `file` as the body to `url` (the monolithic end of an upload); resolves to `{ seconds, bytes,
 * status }`, the time running to the server's answer, so its digest check and commit are in it.
 */
export async function curlPut(url, file, { caFile, authorization }) {
  const r = await curl(url, caFile, [
    "-H",
    `Authorization: ${authorization}`,
    "-H",
    "Content-Type: application/octet-stream",
    // Without this curl waits for a 100 Continue (or a second) before sending a big body.
    "-H",
    "Expect:",
    "-T",
    file,
  ]);
  if (r.status !== 201) throw new Error(`curl PUT ${url} answered ${r.status}, expected 201`);
  return { seconds: r.seconds, bytes: r.up, httpVersion: r.httpVersion };
}

function abNumber(text, label) {
  const match = text.match(new RegExp(`^${label}:\\s+([\\d.]+)`, "m"));
  return match ? Number(match[1]) : null;
}

/**
 * `ab -k` with `connections` keep-alive connections against `url` for `seconds` (or `requests` requests), HEAD
 * when `head`; resolves to `{ rate, complete, keptAlive, failed, non2xx }` (requests per second, requests, of
 * which on a kept-alive connection, failed, answered other than 2xx). With `strict`, a failed or non-2xx
 * request is an error: a rate of 401s is not the rate asked for. ab checks no certificate.
 */
export async function abRate(url, { head = false, headers = [], connections, seconds, requests, strict = true }) {
  const args = ["-q", "-k", "-c", String(connections), "-s", "30"];
  // -t implies -n 50000, so -n comes after it.
  if (seconds) args.push("-t", String(seconds), "-n", "100000000");
  else args.push("-n", String(requests));
  if (head) args.push("-i");
  for (const h of headers) args.push("-H", h);
  args.push(url);
  const { stdout } = await runCommand("ab", args);
  const complete = abNumber(stdout, "Complete requests");
  const failed = abNumber(stdout, "Failed requests") ?? 0;
  const non2xx = abNumber(stdout, "Non-2xx responses") ?? 0;
  const keptAlive = abNumber(stdout, "Keep-Alive requests") ?? 0;
  const rate = abNumber(stdout, "Requests per second");
  if (!complete || rate === null) throw new Error(`ab ${args.join(" ")}: no result in\n${stdout}`);
  if (strict && (failed > 0 || non2xx > 0)) {
    throw new Error(`ab ${url}: ${failed} failed and ${non2xx} non-2xx of ${complete} requests\n${stdout}`);
  }
  return { rate, complete, keptAlive, failed, non2xx };
}
