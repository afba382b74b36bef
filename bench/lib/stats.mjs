// Summaries over rounds.

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** `{ min, median, max, n }` of `values`, or null when there are none. */
export function summarize(values) {
  if (values.length === 0) return null;
  return { min: Math.min(...values), median: median(values), max: Math.max(...values), n: values.length };
}
