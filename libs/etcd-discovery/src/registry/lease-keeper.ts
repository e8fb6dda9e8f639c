import type { Logger } from '@nestjs/common';
import type { Etcd3, Lease } from 'etcd3';
import { Backoff, errorMessage, RECOVERY_BACKOFF, sleep, within } from '../common/backoff.js';
import { etcdActivityOf } from './etcd-activity.js';
import { telemetry } from '../telemetry/index.js';
import { describeEtcdFailure, retryDelayAfter } from './etcd-failure.js';

export interface GrantedLease {
  readonly id: string;
  readonly lease: Lease;
}

/**
 * Holds the ONE lease of this process, shared by all its registrations, and keeps it alive.
 * A lost lease (outage past the TTL, partition, paused process) is dead for good in etcd3, so a
 * new one is granted with jittered backoff; the old one is revoked only after the registrar has
 * moved every key to the new one (`retireOld`), so no key disappears in between.
 */
export class LeaseKeeper {
  private granted?: GrantedLease;
  private granting?: Promise<GrantedLease | undefined>;
  private readonly old = new Set<Lease>();
  private readonly abort = new AbortController();
  private readonly listeners = new Set<(lease: GrantedLease) => void>();
  private readonly lostListeners = new Set<() => void>();
  private grants = 0;
  private keepaliveAnsweredAt?: number;

  constructor(
    private readonly client: Etcd3,
    private readonly ttlSeconds: number,
    private readonly logger: Logger,
  ) {}

  /** Number of leases granted so far; one per process unless leases were lost. */
  get grantCount(): number {
    return this.grants;
  }

  get currentId(): string | undefined {
    return this.granted?.id;
  }

  /** When etcd last answered a keepalive (or the grant) of the live lease, in ms since the epoch. */
  get lastKeepaliveAt(): number | undefined {
    return this.keepaliveAnsweredAt;
  }

  /** Called with every new lease after the first. */
  onReplaced(listener: (lease: GrantedLease) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called when the live lease is lost, before a new one is asked for. */
  onLost(listener: () => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /** The live lease, granting one (retrying until etcd answers) if needed; undefined once closed. */
  acquire(): Promise<GrantedLease | undefined> {
    if (this.granted) return Promise.resolve(this.granted);
    this.granting ??= this.grant().finally(() => (this.granting = undefined));
    return this.granting;
  }

  /** Marks a lease etcd no longer knows (e.g. a put answered "lease not found") as lost. */
  invalidate(id: string, reason: string): void {
    const current = this.granted;
    if (current?.id !== id) return;
    this.lose(current, reason);
  }

  /** Revokes leases replaced earlier; their keys have been moved to the current lease by now. */
  async retireOld(): Promise<void> {
    const leases = [...this.old];
    this.old.clear();
    await Promise.all(leases.map((lease) => lease.revoke().catch(() => undefined)));
  }

  /**
   * Revokes the leases (their keys vanish at once) and stops every retry; bounded by `timeoutMs`.
   * True when every revoke was answered (a lease etcd no longer knows counts: its keys are gone).
   */
  async close(timeoutMs: number): Promise<boolean> {
    this.abort.abort();
    const leases = [...this.old, ...(this.granted ? [this.granted.lease] : [])];
    this.old.clear();
    this.granted = undefined;
    const revokes = Promise.all(leases.map((lease) => lease.revoke().then(() => true, () => false)));
    const revoked = await within(
      revokes.then((results) => results.every(Boolean)),
      timeoutMs,
      false,
    );
    // etcd3 keeps keepalives running after client.close(): stop them whatever revoke did.
    for (const lease of leases) lease.release();
    return revoked;
  }

  private async grant(): Promise<GrantedLease | undefined> {
    const backoff = new Backoff(RECOVERY_BACKOFF);
    let failures = 0;
    while (!this.abort.signal.aborted) {
      const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: true });
      try {
        const id = await lease.grant();
        if (this.abort.signal.aborted) {
          await lease.revoke().catch(() => undefined);
          return undefined;
        }
        const granted: GrantedLease = { id, lease };
        lease.on('lost', (error: Error) => this.lose(granted, errorMessage(error)));
        lease.on('keepaliveSucceeded', () => {
          if (this.granted === granted) this.keepaliveAnsweredAt = Date.now();
          // Keepalives run on a stream, past the client's fault-handling policy: report them ourselves.
          etcdActivityOf(this.client)?.succeeded();
        });
        // etcd3 types this handler's argument as a keepalive response; it emits the error.
        lease.on('keepaliveFailed', (error: unknown) => etcdActivityOf(this.client)?.failed(error));
        this.keepaliveAnsweredAt = Date.now();
        this.granted = granted;
        this.grants += 1;
        telemetry.leaseGranted();
        if (failures > 0 || this.grants > 1) this.logger.log(`granted lease ${id} (ttl ${this.ttlSeconds}s)`);
        if (this.grants > 1) for (const listener of this.listeners) listener(granted);
        return granted;
      } catch (error) {
        lease.release();
        if (failures++ === 0) this.logger.warn(`cannot grant a lease yet (${describeEtcdFailure(error)}); retrying`);
        await sleep(retryDelayAfter(error, backoff.next()), this.abort.signal);
      }
    }
    return undefined;
  }

  private lose(lost: GrantedLease, reason: string): void {
    if (this.granted !== lost) return;
    this.granted = undefined;
    lost.lease.release();
    this.old.add(lost.lease);
    this.logger.warn(`lease ${lost.id} lost (${reason}); granting a new one`);
    telemetry.leaseLost();
    for (const listener of this.lostListeners) listener();
    void this.acquire();
  }
}
