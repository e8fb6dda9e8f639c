/**
 * A stable text for an options object, so the same options (even a new literal each time) map to
 * the same cached client. Values JSON cannot compare (credentials, functions, buffers) count by
 * identity.
 */
export function optionsFingerprint(value: unknown): string {
  return JSON.stringify(normalize(value));
}

const identities = new WeakMap<object, number>();
let nextIdentity = 0;

/** Strings get an `s` tag and identities an `@` tag, so no string can pass for an identity. */
function normalize(value: unknown): unknown {
  if (typeof value === 'string') return `s${value}`;
  if (typeof value === 'function') return `@${identityOf(value)}`;
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(normalize);
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return `@${identityOf(value)}`;
  const record = value as Record<string, unknown>;
  return Object.fromEntries(Object.keys(record).sort().map((key) => [key, normalize(record[key])]));
}

function identityOf(value: object): number {
  let identity = identities.get(value);
  if (identity === undefined) {
    identity = nextIdentity++;
    identities.set(value, identity);
  }
  return identity;
}
