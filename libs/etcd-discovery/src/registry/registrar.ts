import type { Logger } from '@nestjs/common';
import { EtcdLeaseInvalidError, type Etcd3, type IKeyValue } from 'etcd3';
import { Backoff, errorMessage, RECOVERY_BACKOFF, sleep, within } from '../common/backoff.js';
import type { ResolvedRegistration } from '../options/resolved-options.js';
import { formatHostPort, type HostPort } from '../common/host-port.js';
import type { GrantedLease, LeaseKeeper } from './lease-keeper.js';
import { describeEtcdFailure, retryDelayAfter } from './etcd-failure.js';
import { PrefixMirror } from './prefix-mirror.js';
import { instanceKey } from './registry-keys.js';
import { encodeRecord } from './registry-record.codec.js';

/** What the server strategy knows once it is bound. */
export interface ServingEndpoint {
  readonly address: HostPort;
  /** Fully qualified gRPC services served, e.g. `greeter.Greeter`. */
  readonly grpcServices: readonly string[];
}

/** One record this process keeps in etcd. */
export interface RegisteredInstance {
  readonly serviceName: string;
  readonly key: string;
  /** The advertised address, `host:port` (`[v6]:port`), as clients dial it. */
  readonly address: string;
  /** The record's metadata, with what the registrar adds (`grpcServices`, `startedAt`). */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** The record as written to etcd (etcd's naming JSON). */
  readonly value: string;
}

interface OwnKeyState {
  readonly value: string;
  readonly lease: string;
}

type ClaimOutcome = 'created' | 'present' | 'reattached' | 'conflict';

const METADATA_UPDATED = 'metadata updated';

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/** Builds a record; the registrar adds `grpcServices` and `startedAt` to the caller's metadata. */
function buildRecord(serviceName: string, key: string, address: HostPort, metadata: Readonly<Record<string, unknown>>): RegisteredInstance {
  return { serviceName, key, address: formatHostPort(address), metadata, value: encodeRecord(address, metadata) };
}

/**
 * Keeps this process's registrations in etcd: put with the shared lease (create-only), put back
 * if someone deletes a key, move keys to a new lease when the old one is lost. Every trigger just
 * marks the state dirty; one loop reconciles, so concurrent triggers never race each other.
 */
export class Registrar {
  private records: RegisteredInstance[] = [];
  private addresses: HostPort[] = [];
  private readonly mirrors: PrefixMirror<OwnKeyState>[] = [];
  private readonly abort = new AbortController();
  private pending?: string;
  private loop?: Promise<void>;
  private registeredNow = false;
  private readonly registeredListeners = new Set<(registered: boolean) => void>();
  private everRegistered = false;
  private readonly firstRegistration: Promise<void>;
  private resolveFirst!: () => void;
  private readonly unsubscribeLease: Array<() => void> = [];
  /** Keys found holding another record, each logged once until we hold it. */
  private readonly conflicts = new Set<string>();
  /** Every value this process wrote per key: after an update, etcd may still hold an older one of ours. */
  private readonly ownValues = new Map<string, Set<string>>();
  /**
   * The value each key's last claim sent: etcd may hold it though the claim failed (a lost response) or is still
   * running, and the key watch may not show it yet, so update() keeps it among our values.
   */
  private readonly lastSent = new Map<string, string>();
  private paused = false;
  /**
   * Keys a pause deleted: until each is claimed again its key watch may still show our record (the delete's
   * event not yet delivered), and a resume() trusting that view resolved without putting the key back.
   */
  private readonly withdrawn = new Set<string>();
  /** Callers of `settle()` waiting for the next reconcile to start, then for the one running. */
  private nextWaiters: Waiter[] = [];
  private runningWaiters: Waiter[] = [];

  constructor(
    private readonly client: Etcd3,
    private readonly keeper: LeaseKeeper,
    private readonly namespace: string,
    readonly instanceId: string,
    private readonly logger: Logger,
  ) {
    this.firstRegistration = new Promise((resolve) => (this.resolveFirst = resolve));
  }

  get instances(): readonly RegisteredInstance[] {
    return this.records;
  }

  get isRegistered(): boolean {
    return this.registeredNow;
  }

  /** Called whenever `isRegistered` flips. */
  onRegisteredChange(listener: (registered: boolean) => void): () => void {
    this.registeredListeners.add(listener);
    return () => this.registeredListeners.delete(listener);
  }

  private set registered(value: boolean) {
    if (value === this.registeredNow) return;
    this.registeredNow = value;
    for (const listener of this.registeredListeners) listener(value);
  }

  private get registered(): boolean {
    return this.registeredNow;
  }

  /** Resolves once every record is in etcd; registration retries in the background until then. */
  whenRegistered(): Promise<void> {
    return this.firstRegistration;
  }

  /** `paused`: start out of rotation, as if `pause()` had been called first. */
  start(registrations: readonly ResolvedRegistration[], endpoint: ServingEndpoint, paused = false): void {
    if (this.records.length > 0) throw new Error('Registrar.start() called twice');
    this.paused = paused;
    const startedAt = new Date().toISOString();
    this.addresses = [];
    this.records = registrations.map((registration) => {
      const address = { host: registration.host ?? endpoint.address.host, port: registration.port ?? endpoint.address.port };
      this.addresses.push(address);
      const metadata = { ...registration.metadata, grpcServices: [...endpoint.grpcServices], startedAt };
      const record = buildRecord(registration.serviceName, instanceKey(this.namespace, registration.serviceName, this.instanceId), address, metadata);
      this.ownValues.set(record.key, new Set([record.value]));
      return record;
    });
    for (const [index, { key }] of this.records.entries()) {
      const mirror = new PrefixMirror<OwnKeyState>(this.client, {
        prefix: key,
        exactKey: true,
        decode: (_key, kv: IKeyValue) => ({ value: kv.value.toString(), lease: kv.lease }),
        onChange: (snapshot) => {
          const seen = snapshot.get(key)?.value;
          if (this.paused) {
            if (seen && this.isOwnValue(key, seen.value)) this.schedule(`key ${key} reappeared while paused`);
          } else if (!seen) this.schedule(`key ${key} was deleted`);
          else if (seen.value !== this.records[index].value || seen.lease !== this.keeper.currentId) this.schedule(`key ${key} changed`);
        },
        logger: this.logger,
      });
      // Started after the first claim: listing and claiming at once slows both (3 requests, not 2).
      this.mirrors.push(mirror);
    }
    this.unsubscribeLease.push(
      this.keeper.onReplaced(() => this.schedule('lease replaced')),
      // Keys on a lost lease may already be gone: not registered until they are on the new one.
      this.keeper.onLost(() => (this.registered = false)),
    );
    this.schedule('startup');
  }

  /**
   * Replaces the caller's metadata of the records of `serviceNames` (the registrar's own fields stay);
   * resolves once etcd holds the new records, or at once while paused (resume() writes them).
   */
  update(serviceNames: ReadonlySet<string>, metadataOf: (record: RegisteredInstance) => Readonly<Record<string, unknown>>): Promise<void> {
    this.records = this.records.map((record, index) => {
      if (!serviceNames.has(record.serviceName)) return record;
      const { grpcServices, startedAt } = record.metadata;
      const updated = buildRecord(record.serviceName, record.key, this.addresses[index], { ...metadataOf(record), grpcServices, startedAt });
      // Ours from now on (at most four): the current and the new value, the one the last claim sent (etcd may
      // hold it before the key watch shows it) and what the watch shows, if ours. Values of earlier updates never
      // written are forgotten, so updates while paused or offline cannot pile up.
      const seen = this.mirrors[index]?.current.get(record.key)?.value.value;
      const sent = this.lastSent.get(record.key);
      const values = new Set([record.value, updated.value]);
      if (sent !== undefined) values.add(sent);
      if (seen !== undefined && this.isOwnValue(record.key, seen)) values.add(seen);
      this.ownValues.set(record.key, values);
      return updated;
    });
    if (this.paused) return Promise.resolve();
    // Debug: an app may update its weight every second; the update is visible in etcd and to every client.
    this.logger.debug(`updating ${this.describe()}`);
    return this.settle(METADATA_UPDATED);
  }

  /** Takes the records out of etcd (clients stop picking us) while the lease stays alive; resolves once they are gone. */
  pause(): Promise<void> {
    this.paused = true;
    this.registered = false;
    this.logger.log(`pausing ${this.describe()}`);
    return this.settle('paused');
  }

  /** Puts the records back after `pause()`; resolves once they are in etcd. */
  resume(): Promise<void> {
    this.paused = false;
    this.logger.log(`resuming ${this.describe()}`);
    return this.settle('resumed');
  }

  /**
   * Deregisters, bounded by `timeoutMs`: revoking the process's lease removes every key of it in one
   * request (clients stop picking us); if that fails, each key still holding our value is deleted.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    const stopped = new Error('nestjs-etcd-discovery: the registration was withdrawn before etcd was updated');
    for (const waiter of [...this.nextWaiters, ...this.runningWaiters]) waiter.reject(stopped);
    this.nextWaiters = [];
    this.runningWaiters = [];
    for (const unsubscribe of this.unsubscribeLease) unsubscribe();
    for (const mirror of this.mirrors) mirror.stop();
    const deadline = Date.now() + timeoutMs;
    const revoked = await this.keeper.close(timeoutMs);
    // After a lost lease our keys may still sit on the old one: delete whatever still holds our value.
    if (!revoked && this.everRegistered) {
      const deletes = Promise.all(
        this.records.map((record) =>
          this.client.if(record.key, 'Value', '==', record.value).then(this.client.delete().key(record.key)).commit(),
        ),
      ).catch((error: unknown) => this.logger.warn(`could not delete registrations (${errorMessage(error)}); the lease will expire them`));
      await within(deletes, Math.max(0, deadline - Date.now()), undefined);
    }
    if (this.everRegistered) this.logger.log(`deregistered ${this.describe()}`);
    this.registered = false;
  }

  private schedule(reason: string): void {
    if (this.abort.signal.aborted) return;
    this.pending ??= reason;
    this.loop ??= this.reconcileLoop().finally(() => (this.loop = undefined));
  }

  /** Schedules a reconcile; resolves when one that started after this call has succeeded. */
  private settle(reason: string): Promise<void> {
    const settled = new Promise<void>((resolve, reject) => this.nextWaiters.push({ resolve, reject }));
    this.pending = reason;
    this.schedule(reason);
    return settled;
  }

  private async reconcileLoop(): Promise<void> {
    const backoff = new Backoff(RECOVERY_BACKOFF);
    let failing = false;
    while (this.pending !== undefined && !this.abort.signal.aborted) {
      const reason = this.pending;
      this.pending = undefined;
      this.runningWaiters.push(...this.nextWaiters);
      this.nextWaiters = [];
      try {
        await this.reconcile(reason);
        backoff.reset();
        failing = false;
        for (const waiter of this.runningWaiters) waiter.resolve();
        this.runningWaiters = [];
      } catch (error) {
        if (!failing) this.logger.warn(`registration of ${this.describe()} failed (${describeEtcdFailure(error)}); retrying`);
        failing = true;
        this.pending ??= reason;
        await sleep(retryDelayAfter(error, backoff.next()), this.abort.signal);
      }
    }
  }

  private async reconcile(reason: string): Promise<void> {
    if (this.paused) return this.withdrawWhilePaused();
    const granted = await this.keeper.acquire();
    if (!granted || this.abort.signal.aborted) return;
    const outcomes: ClaimOutcome[] = [];
    for (const [index, record] of this.records.entries()) {
      if (this.paused || this.abort.signal.aborted) break;
      const seen = this.mirrors[index].current.get(record.key)?.value;
      if (!this.withdrawn.has(record.key) && seen?.value === record.value && seen.lease === granted.id) continue;
      const outcome = await this.claim(record, granted);
      this.withdrawn.delete(record.key);
      outcomes.push(outcome);
      // etcd now holds this value: older ones of ours cannot come back (an update() meanwhile added the newest).
      if (outcome !== 'conflict') this.ownValues.set(record.key, new Set([record.value, this.records[index].value]));
    }
    await this.keeper.retireOld();
    for (const mirror of this.mirrors) mirror.start();
    if (this.paused) return;
    const wasRegistered = this.registered;
    // A key held by another record is not ours: stay unregistered until it goes (the key watch retries
    // then). A lease lost while claiming leaves us unregistered too: the new lease's reconcile follows.
    this.registered = !outcomes.includes('conflict') && this.keeper.currentId === granted.id;
    if (!this.registered) return;
    if (!this.everRegistered) {
      this.everRegistered = true;
      this.logger.log(`registered ${this.describe()} (lease ${granted.id})`);
      this.resolveFirst();
    } else if (!wasRegistered || (reason !== METADATA_UPDATED && outcomes.some((outcome) => outcome !== 'present'))) {
      this.logger.log(`re-registered ${this.describe()} after: ${reason} (lease ${granted.id})`);
    }
  }

  /** Create-only put; a key already holding our exact value (old lease, same process) is re-attached. */
  private async claim(record: RegisteredInstance, granted: GrantedLease): Promise<ClaimOutcome> {
    const { key, value } = record;
    this.lastSent.set(key, value);
    try {
      const created = await this.client
        .if(key, 'Create', '==', 0)
        .then(this.client.put(key).value(value).lease(granted.id))
        .else(this.client.get(key))
        .commit();
      if (created.succeeded) {
        this.conflicts.delete(key);
        return 'created';
      }
      const existing = created.responses[0]?.response_range?.kvs[0];
      if (!existing) throw new Error(`key ${key} vanished during registration`);
      const held = existing.value.toString();
      if (!this.isOwnValue(key, held)) {
        if (!this.conflicts.has(key)) this.logger.error(`key ${key} holds another process's record; not overwriting it`);
        this.conflicts.add(key);
        return 'conflict';
      }
      this.conflicts.delete(key);
      if (held === value && existing.lease === granted.id) return 'present';
      // Our record on an old lease, or an older record of ours (before update()): replace it unless it changed meanwhile.
      const moved = await this.client
        .if(key, 'Value', '==', held)
        .then(this.client.put(key).value(value).lease(granted.id))
        .commit();
      if (!moved.succeeded) throw new Error(`key ${key} changed during registration`);
      return 'reattached';
    } catch (error) {
      if (error instanceof EtcdLeaseInvalidError) this.keeper.invalidate(granted.id, 'etcd no longer knows it');
      throw error;
    }
  }

  /**
   * Deletes each key still holding a record of ours; the lease stays, so resume() is one put per key. Reads etcd,
   * not the key watch: right after an update the watch may still show the value before, and a delete compared
   * with that one left the newer record in etcd while paused. Another writer's record is left alone.
   */
  private async withdrawWhilePaused(): Promise<void> {
    for (const { key } of this.records) {
      // Claimed on resume whatever is found: the key watch may not have seen the answer to this read either.
      this.withdrawn.add(key);
      for (let attempt = 1; ; attempt++) {
        const held = await this.client.get(key).string();
        if (held === null || !this.isOwnValue(key, held)) break;
        const deleted = await this.client.if(key, 'Value', '==', held).then(this.client.delete().key(key)).commit();
        if (deleted.succeeded) break;
        // Changed between the read and the delete: read again; the reconcile loop retries past a few.
        if (attempt === 3) throw new Error(`key ${key} kept changing while it was being withdrawn`);
      }
    }
    for (const mirror of this.mirrors) mirror.start();
  }

  private isOwnValue(key: string, value: string): boolean {
    return this.ownValues.get(key)?.has(value) ?? false;
  }

  private describe(): string {
    return this.records.map((record) => `${record.serviceName} as ${record.key}`).join(', ');
  }
}
