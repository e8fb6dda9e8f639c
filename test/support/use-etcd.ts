// One etcd node for a test file (or describe block), started before its tests and destroyed after them, with
// the outside client that inspects and mutates it, and a Cleanup that runs after every test.
import type { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { Cleanup, outsiderClient, startEtcd, type LocalEtcd } from './etcd.js';

export interface EtcdFixture {
  /** The node; available from beforeAll on. */
  readonly etcd: LocalEtcd;
  /** A plain etcd3 client on it (no library fault handling): the "outside actor". Made on first use. */
  readonly outsider: Etcd3;
  /** Tasks run after each test, last-in first-out. */
  readonly cleanup: Cleanup;
  /**
   * Closes the outside client and makes a new one: one made before an outage may sit in grpc reconnect backoff or
   * etcd3's circuit breaker afterwards, which would measure the outsider rather than the library.
   */
  renewOutsider(): Etcd3;
}

export interface UseEtcdOptions {
  /** Runs after the tests, before etcd goes: e.g. ending the processes that talk to it. */
  beforeDestroy?: () => unknown;
}

/** Registers the hooks; call once at the top of a spec file or describe block. */
export function useEtcd(options: UseEtcdOptions = {}): EtcdFixture {
  let etcd: LocalEtcd | undefined;
  let outsider: Etcd3 | undefined;
  const cleanup = useCleanup();
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await options.beforeDestroy?.();
    outsider?.close();
    await etcd?.destroy();
  }, 60_000);
  const fixture: EtcdFixture = {
    get etcd() {
      if (!etcd) throw new Error('useEtcd: etcd is not started yet (it starts in beforeAll)');
      return etcd;
    },
    get outsider() {
      outsider ??= outsiderClient(fixture.etcd.endpoint);
      return outsider;
    },
    cleanup,
    renewOutsider() {
      outsider?.close();
      outsider = undefined;
      return fixture.outsider;
    },
  };
  return fixture;
}

/** A Cleanup run after each test (within `timeoutMs`). */
export function useCleanup(timeoutMs = 30_000): Cleanup {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run(), timeoutMs);
  return cleanup;
}
