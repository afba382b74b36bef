// skopeo against two servers that store and check nothing, in alternating order: the bench's nginx floor,
// and the same protocol answered by a bare Node HTTPS server (bench/lib/node-floor-server.mjs). The second
// is as fast as any registry written on Node can be: what a goal leaves over it is all the room there is
// for authentication, durable storage and audit. Each server is warmed up by an unmeasured push and pull.
//   node bench/node-floor.mjs [--rounds N]     (after npm run build and test/setup/install-tools.sh)

import fsp from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { skopeoPull, skopeoPush } from "./lib/clients.mjs";
import { makeTempDir, runWithCleanup } from "./lib/cleanup.mjs";
import { parseFlags, positiveInt } from "./lib/command-line.mjs";
import { imageSpecs, writeImages } from "./lib/images.mjs";
import { prepareSetup } from "./lib/setup.mjs";
import { floor, nodeFloor } from "./lib/sides.mjs";
import { summarize } from "./lib/stats.mjs";
import { fmt, markdownTable } from "./lib/table.mjs";

const usage = "usage: node bench/node-floor.mjs [--rounds N]   (default 3)";

async function main() {
  let rounds = 3;
  parseFlags(process.argv.slice(2), usage, (flag, value) => {
    if (flag !== "--rounds") return false;
    rounds = positiveInt(usage, flag, value());
  });
  // Portcullis's first start makes the certificate both floors serve, as in the bench.
  const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "cli", "main.js");
  const { setup } = await prepareSetup({ dist });
  const specs = imageSpecs({ bigMiB: 1, manyLayers: [100, 200] });
  const root = await makeTempDir("bench-node-floor-images-");
  const images = await writeImages(root, { layers100: specs.layers100, layers200: specs.layers200 });
  // nginx's workers (not root) serve the images.
  for (const dir of [root, ...Object.values(images).map((image) => image.dir)]) await fsp.chmod(dir, 0o755);
  const times = {};
  for (let round = 0; round < rounds; round++) {
    for (const [name, image] of Object.entries(images)) {
      const sides = round % 2 === 0 ? [floor, nodeFloor] : [nodeFloor, floor];
      for (const side of sides) {
        const instance = await side.start(setup, { root: image.dir });
        const target = { url: instance.url, caDir: setup.tls.caDir, user: setup.user };
        try {
          await skopeoPush(image, target, "bench/floor");
          await skopeoPull(image, target, "bench/floor");
          const push = await skopeoPush(image, target, "bench/floor");
          const pull = await skopeoPull(image, target, "bench/floor");
          for (const [op, seconds] of [
            ["push", push],
            ["pull", pull],
          ]) {
            (times[`${name} ${op} ${side.id}`] ??= []).push(seconds);
            console.log(`round ${round + 1}/${rounds} ${name} ${op} ${side.label}: ${fmt(seconds, 2)} s`);
          }
        } finally {
          await instance.stop();
        }
      }
    }
  }
  const cell = (key) => {
    const s = summarize(times[key] ?? []);
    return s ? `${fmt(s.min, 2)} / ${fmt(s.median, 2)} / ${fmt(s.max, 2)}` : "-";
  };
  const rows = [["skopeo (s, min / median / max)", floor.label, nodeFloor.label]];
  for (const name of Object.keys(images))
    for (const op of ["push", "pull"])
      rows.push([
        `${op}, ${images[name].blobs.size - 1} layers of 256 KiB`,
        cell(`${name} ${op} floor`),
        cell(`${name} ${op} node-floor`),
      ]);
  console.log(`\n${markdownTable(rows)}`);
}

runWithCleanup(main);
