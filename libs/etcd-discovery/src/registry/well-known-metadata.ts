import { DEFAULT_WEIGHT, WELL_KNOWN_RULES, type FieldRule } from '../options/metadata-rules.js';

/**
 * The metadata fields this library gives a meaning to, read from a record through their rules
 * (options/metadata-rules.ts): a bad value there is somebody else's, so it counts as the default and
 * is reported, where the same value in the registration options is the user's error, thrown at startup.
 */
export interface WellKnownMetadata {
  /** Smooth weighted round robin weight: an integer 0..MAX_WEIGHT; 0 = standby. */
  readonly weight: number;
  readonly zone?: string;
  readonly version?: string;
  /** What was wrong with a field, if anything: e.g. `weight -1 is not ...; using 1`. */
  readonly problems: readonly string[];
}

/** The well-known fields of a metadata object; read on first use (routing by zone, weights) and cached by identity. */
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
