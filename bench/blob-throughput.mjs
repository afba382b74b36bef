// Blob push/pull throughput and server memory: the built-in registry side by side with
// docker-registry (CNCF distribution 2.x). Plain Node, no dependencies.
//
//   node bench/blob-throughput.mjs [--rounds N] [--size MiB] [--only portcullis|docker-registry]
//                                  [--content-length] [--portcullis PATH] [--docker-registry PATH]
//
// Each round starts every server fresh (new port, new empty root), pushes one blob with the
// streamed OCI flow (POST, one PATCH, PUT ?digest=), pulls it back checking the digest, and
// samples the server's memory from /proc/PID/status. Results go to stdout and to
// bench/results/blob-throughput.json.

import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createBlobFile } from "./lib/blob-file.mjs";
import { pullBlob, pushBlob } from "./lib/blob-transfer.mjs";
import { makeTempDir, removeTempDir, runWithCleanup } from "./lib/cleanup.mjs";
import { parseFlags, positiveInt, usageError } from "./lib/command-line.mjs";
import { dockerRegistryConfig } from "./lib/docker-registry-config.mjs";
import { freePort } from "./lib/free-port.mjs";
import { probe, waitReady } from "./lib/readiness.mjs";
import { environment, writeResults } from "./lib/results-file.mjs";
import { max, median } from "./lib/stats.mjs";
import { describeRound, runAlternatingRounds, transferMeasurements } from "./lib/rounds.mjs";
import { fmt, printTable } from "./lib/table.mjs";
import { tail } from "./lib/tail.mjs";
import { spawnTracked, STOP_GRACE_MS } from "./lib/tracked-process.mjs";
import { MiB } from "./lib/units.mjs";

const REPO = "bench/blob";
const TARGET_RSS_MiB = 150;

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const defaultPortcullisCli = path.join(projectRoot, "dist", "cli", "main.js");
const resultsFile = path.join(projectRoot, "bench", "results", "blob-throughput.json");

const usage = `usage: node bench/blob-throughput.mjs [options]
  --rounds N              rounds per server (default 3)
  --size MiB              blob size in MiB (default 1024)
  --only NAME             run one server only: portcullis | docker-registry
  --content-length        send Content-Length on the PATCH (default: chunked, as docker does)
  --portcullis PATH       Portcullis CLI script (default dist/cli/main.js)
  --docker-registry PATH  docker-registry binary (default /usr/bin/docker-registry)`;

function parseArgs(argv) {
  const opts = {
    rounds: 3,
    sizeMiB: 1024,
    only: null,
    contentLength: false,
    portcullis: defaultPortcullisCli,
    dockerRegistry: "/usr/bin/docker-registry",
  };
  parseFlags(argv, usage, (flag, value) => {
    switch (flag) {
      case "--rounds":
        opts.rounds = positiveInt(usage, flag, value());
        break;
      case "--size":
        opts.sizeMiB = positiveInt(usage, flag, value());
        break;
      case "--only":
        opts.only = value();
        if (!["portcullis", "docker-registry"].includes(opts.only)) {
          usageError(usage, `--only takes portcullis or docker-registry, got ${opts.only}`);
        }
        break;
      case "--content-length":
        opts.contentLength = true;
        break;
      case "--portcullis":
        opts.portcullis = path.resolve(value());
        break;
      case "--docker-registry":
        opts.dockerRegistry = value();
        break;
      default:
        return false;
    }
  });
  return opts;
}

const servers = {
  portcullis: {
    name: "portcullis",
    async command({ port, root }, opts) {
      if (!fs.existsSync(opts.portcullis)) {
        throw new Error(`${opts.portcullis} is missing; run npm run build first`);
      }
      // The node binary itself, not npm or a shell, so that the PID is the server's.
      return [process.execPath, [opts.portcullis, "registry", "--listen", `127.0.0.1:${port}`, "--root", root]];
    },
  },
  "docker-registry": {
    name: "docker-registry",
    async command({ port, root, configDir }, opts) {
      const configFile = path.join(configDir, "config.yml");
      await fsp.writeFile(configFile, dockerRegistryConfig(root, port));
      return [opts.dockerRegistry, ["serve", configFile]];
    },
  },
};

async function startServer(server, opts) {
  const port = await freePort();
  const root = await makeTempDir(`bench-${server.name}-root-`);
  const configDir = await makeTempDir(`bench-${server.name}-conf-`);
  const [cmd, args] = await server.command({ port, root, configDir }, opts);
  const proc = spawnTracked(server.name, cmd, args);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(proc, async () => (await probe(`${url}/v2/`)) !== null);
  proc.startSampling();

  return {
    url,
    output: proc.output,
    alive: proc.alive,
    async stop() {
      const memory = await proc.stop();
      await removeTempDir(root);
      await removeTempDir(configDir);
      return memory;
    },
  };
}

async function runRound(server, blob, opts) {
  const instance = await startServer(server, opts);
  let push, pull, memory;
  try {
    push = await pushBlob({ baseUrl: instance.url, repository: REPO, blob, contentLength: opts.contentLength });
    pull = await pullBlob({ baseUrl: instance.url, repository: REPO, blob });
    if (!instance.alive()) throw new Error(`${server.name} died during the round:\n${tail(instance.output())}`);
  } catch (err) {
    const out = tail(instance.output(), 3000);
    if (out.trim()) err.message += `\n--- ${server.name} output (tail) ---\n${out}`;
    throw err;
  } finally {
    memory = await instance.stop();
  }
  return {
    ...transferMeasurements(blob.sizeBytes, push, pull),
    peakRssMiB: memory.peakRssBytes === null ? null : memory.peakRssBytes / MiB,
    maxPolledRssMiB: memory.maxPolledRssBytes / MiB,
    stopSeconds: memory.stopSeconds,
    neededSigkill: memory.killed,
  };
}

function summarize(rounds) {
  return {
    medianPushMiBps: median(rounds.map((r) => r.pushMiBps)),
    medianPullMiBps: median(rounds.map((r) => r.pullMiBps)),
    peakRssMiB: max(rounds.map((r) => r.peakRssMiB)),
    maxPolledRssMiB: max(rounds.map((r) => r.maxPolledRssMiB)),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const names = opts.only ? [opts.only] : ["portcullis", "docker-registry"];
  const blob = await createBlobFile(opts.sizeMiB, "bench-blob-data-");

  const results = await runAlternatingRounds(
    names,
    opts.rounds,
    (name) => runRound(servers[name], blob, opts),
    (round, name, r) => {
      console.log(`${round} ${name.padEnd(15)} ${describeRound(r)}`);
      if (r.neededSigkill) console.warn(`  note: ${name} ignored SIGTERM for ${STOP_GRACE_MS} ms and was killed`);
    },
  );
  await removeTempDir(blob.dir);

  const summary = Object.fromEntries(names.map((n) => [n, summarize(results[n])]));
  const ratio = (a, b) => (a === null || b === null || b === 0 ? null : a / b);
  const ratios =
    summary.portcullis && summary["docker-registry"]
      ? {
          push: ratio(summary.portcullis.medianPushMiBps, summary["docker-registry"].medianPushMiBps),
          pull: ratio(summary.portcullis.medianPullMiBps, summary["docker-registry"].medianPullMiBps),
          peakRss: ratio(summary.portcullis.peakRssMiB, summary["docker-registry"].peakRssMiB),
        }
      : null;

  console.log(
    `\n${opts.sizeMiB} MiB blob, ${opts.rounds} round(s), PATCH ${opts.contentLength ? "with Content-Length" : "chunked"}`,
  );
  const rows = [["server", "push MiB/s (median)", "pull MiB/s (median)", "peak RSS MiB", "max polled RSS MiB"]];
  for (const name of names) {
    const s = summary[name];
    rows.push([name, fmt(s.medianPushMiBps), fmt(s.medianPullMiBps), fmt(s.peakRssMiB), fmt(s.maxPolledRssMiB)]);
  }
  if (ratios)
    rows.push(["portcullis/docker-registry", fmt(ratios.push, 2), fmt(ratios.pull, 2), fmt(ratios.peakRss, 2), ""]);
  printTable(rows);

  let underTarget = null;
  if (summary.portcullis) {
    underTarget = summary.portcullis.peakRssMiB !== null && summary.portcullis.peakRssMiB < TARGET_RSS_MiB;
    console.log(
      `\nportcullis peak RSS ${fmt(summary.portcullis.peakRssMiB)} MiB: ` +
        `${underTarget ? "under" : "NOT under"} the ${TARGET_RSS_MiB} MiB target`,
    );
  }

  const report = {
    benchmark: "blob-throughput",
    date: new Date().toISOString(),
    environment: environment(),
    options: {
      sizeMiB: opts.sizeMiB,
      rounds: opts.rounds,
      only: opts.only,
      patchBody: opts.contentLength ? "content-length" : "chunked",
    },
    digest: blob.digest,
    targetPeakRssMiB: TARGET_RSS_MiB,
    portcullisUnderTarget: underTarget,
    summary,
    ratios,
    rounds: results,
  };
  await writeResults(resultsFile, report);
}

runWithCleanup(main);
