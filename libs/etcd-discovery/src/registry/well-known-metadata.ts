/**
 * The metadata fields this library gives a meaning to, with their one rule each. Registration
 * options are checked against these rules (a bad value is the user's error: thrown at startup),
 * and records read from etcd through them (a bad value there is somebody else's: counted as the
 * default and reported).
 */
export interface WellKnownMetadata {
  /** Smooth weighted round robin weight: an integer 0..MAX_WEIGHT; 0 = standby. */
  readonly weight: number;
  readonly zone?: string;
  readonly version?: string;
  /** What was wrong with a field, if anything: e.g. `weight -1 is not ...; using 1`. */
  readonly problems: readonly string[];
}

export const DEFAULT_WEIGHT = 1;
export const MAX_WEIGHT = 1_000_000;

interface FieldRule {
  readonly field: 'weight' | 'zone' | 'version';
  readonly accepts: (value: unknown) => boolean;
  /** What the value must be, in words, for error messages. */
  readonly expected: string;
  /** What a record with a bad value gets instead, in words. */
  readonly instead: string;
}

export const WELL_KNOWN_RULES: readonly FieldRule[] = [
  {
    field: 'weight',
    accepts: (value) => typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_WEIGHT,
    expected: `a whole number from 0 to ${MAX_WEIGHT} (0 = standby only)`,
    instead: `counting it as ${DEFAULT_WEIGHT}`,
  },
  { field: 'zone', accepts: isShortString, expected: 'a string of at most 128 characters', instead: 'treating it as no zone' },
  { field: 'version', accepts: isShortString, expected: 'a string of at most 128 characters', instead: 'treating it as no version' },
];

function isShortString(value: unknown): boolean {
  return typeof value === 'string' && value.length <= 128;
}

/** The well-known fields of a metadata object; read once per record (decode) and cached by identity. */
export function wellKnownMetadata(metadata: Readonly<Record<string, unknown>>): WellKnownMetadata {
  let known = cache.get(metadata);
  if (!known) {
    known = readWellKnown(metadata);
    cache.set(metadata, known);
  }
  return known;
}

const cache = new WeakMap<object, WellKnownMetadata>();

function readWellKnown(metadata: Readonly<Record<string, unknown>>): WellKnownMetadata {
  const problems: string[] = [];
  const valid = (rule: FieldRule): boolean => {
    const value = metadata[rule.field];
    if (value === undefined || rule.accepts(value)) return value !== undefined;
    problems.push(`${rule.field} ${describeValue(value)} is not ${rule.expected}; ${rule.instead}`);
    return false;
  };
  const [weightRule, zoneRule, versionRule] = WELL_KNOWN_RULES;
  return Object.freeze({
    weight: valid(weightRule) ? (metadata.weight as number) : DEFAULT_WEIGHT,
    zone: valid(zoneRule) ? (metadata.zone as string) : undefined,
    version: valid(versionRule) ? (metadata.version as string) : undefined,
    problems: Object.freeze(problems),
  });
}

/** A short description that never walks the value (it may be deeply nested). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (Array.isArray(value)) return `(an array of ${value.length})`;
  if (value !== null && typeof value === 'object') return '(an object)';
  return String(value);
}
