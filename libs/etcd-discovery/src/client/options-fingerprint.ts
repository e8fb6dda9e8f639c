/**
 * A stable text for an options object, so the same options (even a new literal each time) map to
 * the same cached client. Values JSON cannot compare (functions, buffers) count by identity, except
 * objects that can compare themselves: grpc-js credentials have `_equals`, so a fresh
 * `credentials.createInsecure()` per call maps to the same client as the last one.
 */
export function optionsFingerprint(value: unknown): string {
  return JSON.stringify(normalize(value, new Set()));
}

const identities = new WeakMap<object, number>();
let nextIdentity = 0;

/** Strings get an `s` tag and identities an `@` tag, so no string can pass for an identity. */
function normalize(value: unknown, path: Set<object>): unknown {
  if (typeof value === 'string') return `s${value}`;
  if (typeof value === 'function') return `@${identityOf(value)}`;
  if (value === null || typeof value !== 'object') return value;
  // A cycle cannot be spelled out: the object it returns to counts by identity.
  if (path.has(value)) return `@${identityOf(value)}`;
  path.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => normalize(item, path));
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) return `@${identityOf(value)}`;
    const record = value as Record<string, unknown>;
    return Object.fromEntries(Object.keys(record).sort().map((key) => [key, normalize(record[key], path)]));
  } finally {
    path.delete(value);
  }
}

function identityOf(value: object): number {
  let identity = identities.get(value);
  if (identity === undefined) {
    identity = equalIdentity(value) ?? nextIdentity++;
    identities.set(value, identity);
  }
  return identity;
}

interface SelfComparing {
  _equals(other: unknown): boolean;
}

/** Objects seen so far that compare themselves, held weakly; looked up when a new one arrives. */
let selfComparing: WeakRef<SelfComparing>[] = [];

function equalIdentity(value: object): number | undefined {
  if (typeof (value as Partial<SelfComparing>)._equals !== 'function') return undefined;
  selfComparing = selfComparing.filter((ref) => ref.deref() !== undefined);
  for (const ref of selfComparing) {
    const known = ref.deref();
    if (known && known.constructor === value.constructor && safeEquals(known, value)) return identities.get(known);
  }
  selfComparing.push(new WeakRef(value as SelfComparing));
  return undefined;
}

function safeEquals(known: SelfComparing, value: object): boolean {
  try {
    return known._equals(value) === true;
  } catch {
    return false;
  }
}
