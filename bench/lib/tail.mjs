/** The last `max` characters of `text`, marked with … when cut. */
export function tail(text, max = 4000) {
  return text.length > max ? `…${text.slice(-max)}` : text;
}
