import type { Logger } from '@nestjs/common';
import type { Etcd3, IKeyValue } from 'etcd3';
import { BehaviorSubject, distinctUntilChanged, filter, map, type Observable } from 'rxjs';
import { printable } from '../common/printable.js';
import type { AddressPolicy } from '../registry/address-policy.js';
import { PrefixMirror, type MirrorSnapshot } from '../registry/prefix-mirror.js';
import { instanceIdOf } from '../registry/registry-keys.js';
import { decodeRecord, type ServiceInstance } from '../registry/registry-record.codec.js';
import type { DiscoveryState } from './discovery-state.js';
import { buildInstanceList, diffInstances, isEmptyDiff, type DecodedEntry } from './instance-list.js';

/**
 * Follows the live instances of one service: a prefix mirror under `<namespace>/<service>/`
 * turned into a routable list. Emits only when the list changes. Before the first successful list
 * it emits why listing failed (if it did), never an empty list: "no instance yet" is never
 * confused with "etcd unreachable".
 */
export class ServiceWatcher {
  private readonly state$ = new BehaviorSubject<DiscoveryState | undefined>(undefined);
  private readonly mirror: PrefixMirror<DecodedEntry>;
  private readonly reported = new Set<string>();
  private listed?: readonly ServiceInstance[];

  constructor(
    client: Etcd3,
    readonly serviceName: string,
    readonly prefix: string,
    private readonly logger: Logger,
    private readonly policy?: AddressPolicy,
  ) {
    this.mirror = new PrefixMirror<DecodedEntry>(client, {
      prefix,
      decode: (key, kv: IKeyValue) => ({ ...decodeRecord(kv.value), id: instanceIdOf(prefix, key) }),
      onChange: (snapshot) => this.update(snapshot),
      onListFailed: (reason) => this.listFailed(reason),
      logger,
    });
  }

  get states$(): Observable<DiscoveryState> {
    return this.state$.pipe(filter((state): state is DiscoveryState => state !== undefined));
  }

  get instances$(): Observable<readonly ServiceInstance[]> {
    return this.states$.pipe(
      map((state) => (state.kind === 'listed' ? state.instances : undefined)),
      filter((list): list is readonly ServiceInstance[] => list !== undefined),
      distinctUntilChanged(),
    );
  }

  start(): void {
    this.mirror.start();
  }

  stop(): void {
    this.mirror.stop();
    this.state$.complete();
  }

  /** Why etcd could not be listed, while that lasts. */
  get unreachableReason(): string | undefined {
    return this.mirror.unreachableReason;
  }

  /**
   * Builds and logs the new list before anything is published; a throw here leaves the mirror's
   * previous snapshot in place.
   */
  private update(snapshot: MirrorSnapshot<DecodedEntry>): void {
    const { instances, skipped } = buildInstanceList(snapshot, this.policy);
    const previous = this.listed;
    const diff = diffInstances(previous ?? [], instances);
    this.reportSkipped(skipped);
    if (previous !== undefined && isEmptyDiff(diff)) return;
    const parts = [
      ...diff.added.map((instance) => `+${instance.address} (${printable(instance.id, 80)})`),
      ...diff.removed.map((instance) => `-${instance.address} (${printable(instance.id, 80)})`),
      ...diff.changed.map((instance) => `~${instance.address} (${printable(instance.id, 80)})`),
    ];
    if (parts.length > 0) this.logger.log(`${this.serviceName}: ${summarize(parts)}; ${instances.length} live`);
    this.listed = instances;
    this.state$.next({ kind: 'listed', instances });
  }

  private listFailed(reason: string): void {
    if (this.listed === undefined) this.state$.next({ kind: 'unlisted', reason });
  }

  /**
   * Each skipped key is logged once while it stays skipped (whatever garbage is rewritten there),
   * and forgotten when it goes away or becomes valid.
   */
  private reportSkipped(skipped: ReadonlyMap<string, string>): void {
    for (const [key, reason] of skipped) {
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      this.logger.warn(`${this.serviceName}: skipping "${printable(key)}": ${printable(reason)}`);
    }
    for (const key of this.reported) if (!skipped.has(key)) this.reported.delete(key);
  }
}

/** One log line per change, however many instances a change moved. */
const MAX_LISTED_CHANGES = 10;

function summarize(parts: readonly string[]): string {
  if (parts.length <= MAX_LISTED_CHANGES) return parts.join(' ');
  return `${parts.slice(0, MAX_LISTED_CHANGES).join(' ')} and ${parts.length - MAX_LISTED_CHANGES} more`;
}
