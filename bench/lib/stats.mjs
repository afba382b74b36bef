// Summaries over rounds; a null (not measured) is left out.

export function median(values) {
  const sorted = values.filter((v) => v !== null).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function max(values) {
  const present = values.filter((v) => v !== null);
  return present.length ? Math.max(...present) : null;
}
