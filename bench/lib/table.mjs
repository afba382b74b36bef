/** A number with `digits` decimals, or "-" when there is none. */
export function fmt(value, digits = 1) {
  return value === null || value === undefined ? "-" : value.toFixed(digits);
}

/** Prints `rows` (the first is the header) as columns: the first left-aligned, the others right-aligned. */
export function printTable(rows) {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => String(row[col]).length)));
  const line = (row) => row.map((cell, col) => String(cell)[col ? "padStart" : "padEnd"](widths[col])).join("  ");
  console.log(line(rows[0]));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows.slice(1)) console.log(line(row));
}
