/** Longest text from the registry (a key, a value, a reason) that one log line carries. */
export const MAX_LOGGED_CHARS = 200;

/**
 * Text from etcd or from a peer, made safe for one log line: control and non-ASCII characters
 * escaped (a key could otherwise forge log lines or terminal escapes), then truncated, saying how
 * much was cut (a value can be megabytes).
 */
export function printable(text: string, maxChars = MAX_LOGGED_CHARS): string {
  const head = text.length > maxChars * 4 ? text.slice(0, maxChars * 4) : text;
  // eslint-disable-next-line no-control-regex
  const escaped = head.replace(/[^\x20-\x7e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (escaped.length <= maxChars && head.length === text.length) return escaped;
  return `${escaped.slice(0, maxChars)}...(${text.length} chars)`;
}
