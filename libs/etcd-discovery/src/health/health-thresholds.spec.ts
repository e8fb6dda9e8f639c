import { describe, expect, it } from 'vitest';
import { InvalidDiscoveryOptionsError } from '../options/invalid-options.error.js';
import { defaultHealthThresholds, resolveHealthThresholds } from './health-thresholds.js';

const DEFAULTS = defaultHealthThresholds(10);

describe('health thresholds', () => {
  it('default to 1.5 x the lease TTL, and take what is given over them', () => {
    expect(DEFAULTS).toEqual({ etcdUnreachableMs: 15_000, registrationAbsentMs: 15_000 });
    expect(resolveHealthThresholds(undefined, DEFAULTS)).toEqual(DEFAULTS);
    expect(resolveHealthThresholds({ etcdUnreachableMs: 0 }, DEFAULTS)).toEqual({ etcdUnreachableMs: 0, registrationAbsentMs: 15_000 });
    expect(resolveHealthThresholds({ etcdUnreachableMs: Infinity, registrationAbsentMs: 500 }, DEFAULTS)).toEqual({
      etcdUnreachableMs: Infinity,
      registrationAbsentMs: 500,
    });
  });

  it.each([
    [null, 'thresholds', /an object, or nothing/],
    [[1], 'thresholds', /an object, or nothing/],
    [{ etcdUnreachableMS: 5 }, 'thresholds.etcdUnreachableMS', /unknown threshold; use etcdUnreachableMs or registrationAbsentMs/],
    [{ etcdUnreachableMs: -1 }, 'thresholds.etcdUnreachableMs', /whole number of milliseconds, 0 or more/],
    [{ registrationAbsentMs: 1.5 }, 'thresholds.registrationAbsentMs', /whole number of milliseconds/],
    [{ registrationAbsentMs: '5000' }, 'thresholds.registrationAbsentMs', /whole number of milliseconds/],
    [{ etcdUnreachableMs: Number.NaN }, 'thresholds.etcdUnreachableMs', /whole number of milliseconds/],
    [{ etcdUnreachableMs: -Infinity }, 'thresholds.etcdUnreachableMs', /Infinity: never down for this/],
  ])('refuses %j naming %s', (thresholds, field, fix) => {
    let error: unknown;
    try {
      resolveHealthThresholds(thresholds, DEFAULTS);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidDiscoveryOptionsError);
    expect((error as InvalidDiscoveryOptionsError).field).toBe(field);
    expect((error as Error).message).toMatch(fix);
  });
});
