// A benchmark's rounds: every side once a round, in alternating order so that no side always goes first.

import { fmt } from "./table.mjs";
import { MiB } from "./units.mjs";

/**
 * Runs `rounds` rounds of `runRound(name)` over `names`, calling `report("round I/N", name, result)` after
 * each; resolves to every name's results in round order.
 */
export async function runAlternatingRounds(names, rounds, runRound, report) {
  const results = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const r = await runRound(name);
      results[name].push(r);
      report(`round ${round + 1}/${rounds}`, name, r);
    }
  }
  return results;
}

/** The times and rates of one push (from pushBlob) and pull (its seconds) of `sizeBytes`. */
export function transferMeasurements(sizeBytes, push, pullSeconds) {
  const mibps = (s) => sizeBytes / MiB / s;
  return {
    pushSeconds: push.seconds,
    patchSeconds: push.patchSeconds,
    putSeconds: push.putSeconds,
    pullSeconds,
    pushMiBps: mibps(push.seconds),
    pullMiBps: mibps(pullSeconds),
  };
}

/** A round's rates and memory, as its line on the console shows them. */
export function describeRound(r) {
  return (
    `push ${fmt(r.pushMiBps).padStart(7)} MiB/s` +
    ` (PATCH ${fmt(r.patchSeconds, 2)} s, PUT ${fmt(r.putSeconds, 2)} s)` +
    `  pull ${fmt(r.pullMiBps).padStart(7)} MiB/s  peak RSS ${fmt(r.peakRssMiB)} MiB` +
    ` (max polled ${fmt(r.maxPolledRssMiB)} MiB)`
  );
}
