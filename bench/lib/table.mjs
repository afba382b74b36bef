/** A number with `digits` decimals, or "-" when there is none. */
export function fmt(value, digits = 1) {
  return value === null || value === undefined ? "-" : value.toFixed(digits);
}

const escapeCell = (text) => String(text).replaceAll("|", "\\|");

/** `rows` (the first is the header) as a markdown table; columns after the first are right-aligned. */
export function markdownTable(rows) {
  const [header, ...body] = rows;
  const line = (row) => `| ${row.map(escapeCell).join(" | ")} |`;
  const rule = `|${header.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`;
  return [line(header), rule, ...body.map(line)].join("\n");
}
