// A bare Node HTTPS server speaking the nginx floor's part of the protocol (see floorRegistryServer): no
// authentication, nothing stored, a blob HEAD says 404 so a push sends every byte, and a pull gets the
// manifest and blobs of one image's `dir:` layout. What Node's TLS and HTTP alone cost a registry on it.
//   node bench/lib/node-floor-server.mjs PORT CERT KEY IMAGE_DIR

import fs from "node:fs";
import https from "node:https";
import { pipeline } from "node:stream";

const [port, cert, key, root] = process.argv.slice(2);
const json = { "Content-Type": "application/json" };

function answer(res, status, headers = {}, body = "") {
  res.writeHead(status, { "Content-Length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

function serveFile(req, res, file, type) {
  const size = fs.statSync(file).size;
  res.writeHead(200, { "Content-Type": type, "Content-Length": size });
  if (req.method === "HEAD") return res.end();
  pipeline(fs.createReadStream(file, { highWaterMark: 256 * 1024 }), res, () => undefined);
}

/** Reads and drops the body, then answers. */
function afterBody(req, reply) {
  req.resume();
  req.once("end", reply);
}

let uploads = 0;
const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {
  const path = new URL(req.url, "https://floor").pathname;
  let match;
  if (path === "/v2/") return answer(res, 200, json, "{}");
  if ((match = /^\/v2\/(.+)\/blobs\/uploads\/$/.exec(path)))
    return afterBody(req, () =>
      answer(res, 202, { Location: `/v2/${match[1]}/blobs/uploads/${++uploads}-${process.pid}`, Range: "0-0" }),
    );
  if (/^\/v2\/.+\/blobs\/uploads\/[^/]+$/.test(path))
    return afterBody(req, () =>
      req.method === "PUT" ? answer(res, 201) : answer(res, 202, { Location: path, Range: "0-0" }),
    );
  if ((match = /^\/v2\/.+\/blobs\/sha256:([0-9a-f]{64})$/.exec(path))) {
    if (req.method === "HEAD") return answer(res, 404);
    return serveFile(req, res, `${root}/${match[1]}`, "application/octet-stream");
  }
  if (/^\/v2\/.+\/manifests\//.test(path)) {
    if (req.method === "PUT") return afterBody(req, () => answer(res, 201));
    return serveFile(req, res, `${root}/manifest.json`, "application/vnd.oci.image.manifest.v1+json");
  }
  answer(res, 404, json, '{"errors":[{"code":"UNSUPPORTED"}]}');
});
server.listen(Number(port), "127.0.0.1", () => console.log("listening"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
