import { expect } from 'vitest';
import { InvalidDiscoveryOptionsError } from '../../libs/etcd-discovery/src/options/invalid-options.error.js';

/** Runs `run`, asserts it threw the options error class, and returns the error for field / message checks. */
export function invalid(run: () => unknown): InvalidDiscoveryOptionsError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidDiscoveryOptionsError);
    return error as InvalidDiscoveryOptionsError;
  }
  throw new Error('expected InvalidDiscoveryOptionsError, nothing was thrown');
}
