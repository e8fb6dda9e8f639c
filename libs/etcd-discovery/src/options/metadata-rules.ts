/**
 * The rules metadata must follow, written once: registration options are validated with them, and records
 * read from etcd are decoded with them (registry/registry-record.codec.ts, registry/well-known-metadata.ts).
 */

export const DEFAULT_WEIGHT = 1;
export const MAX_WEIGHT = 1_000_000;

export interface FieldRule {
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

/**
 * Bounds of a record. Anything read from etcd may have been written by a buggy or hostile process, so a record is
 * bounded before anything walks it: a 10 KB value nested 5,000 levels deep parses fine, but every
 * later JSON.stringify of it throws (stack overflow). These bounds are above what a registration
 * writes (options allow 16 KiB of user metadata, to which the registrar adds a few fields).
 */
export const MAX_RECORD_BYTES = 64 * 1024;
export const MAX_METADATA_BYTES = 32 * 1024;
export const MAX_METADATA_DEPTH = 8;
export const MAX_METADATA_KEYS = 64;
export const MAX_METADATA_ARRAY = 256;

/**
 * Why a metadata object (at depth 1) breaks the bounds, or undefined. Records are depth-scanned as text
 * before they are parsed, so this recursion is bounded for them too.
 */
export function metadataShapeProblem(value: unknown, depth = 1): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  if (depth > MAX_METADATA_DEPTH) return `is nested deeper than ${MAX_METADATA_DEPTH} levels`;
  if (Array.isArray(value)) {
    if (value.length > MAX_METADATA_ARRAY) return `has an array of ${value.length} items, over ${MAX_METADATA_ARRAY}`;
    for (const item of value) {
      const problem = metadataShapeProblem(item, depth + 1);
      if (problem) return problem;
    }
  } else {
    const entries = Object.keys(value);
    if (entries.length > MAX_METADATA_KEYS) return `has an object of ${entries.length} keys, over ${MAX_METADATA_KEYS}`;
    for (const key of entries) {
      const problem = metadataShapeProblem((value as Record<string, unknown>)[key], depth + 1);
      if (problem) return problem;
    }
  }
  return undefined;
}
