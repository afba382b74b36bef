/** Start of the list after `last`, at most `n` entries, and the `Link` to the next page when there is one. */
export function paginate(
  sorted: readonly string[],
  query: URLSearchParams,
  path: string,
  invalidNumber: (n: string) => Error,
): { page: string[]; headers: Record<string, string> } {
  const last = query.get("last") ?? undefined;
  const nText = query.get("n");
  let n: number | undefined;
  if (nText !== null && nText !== "") {
    n = Number(nText);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw invalidNumber(nText);
    }
  }
  const rest = last === undefined ? sorted : sorted.filter((entry) => entry > last);
  const page = n === undefined ? [...rest] : rest.slice(0, n);
  const headers: Record<string, string> = {};
  if (n !== undefined && n > 0 && rest.length > page.length) {
    const next = new URLSearchParams({ last: page[page.length - 1] as string, n: String(n) });
    headers.Link = `<${path}?${next.toString()}>; rel="next"`;
  }
  return { page, headers };
}
