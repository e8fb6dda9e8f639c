import type { Logger } from '@nestjs/common';
import type { Etcd3, IKeyValue } from 'etcd3';
import { BehaviorSubject, filter, type Observable } from 'rxjs';
import { PrefixMirror, type MirrorSnapshot } from '../registry/prefix-mirror.js';
import { instanceIdOf } from '../registry/registry-keys.js';
import { decodeRecord, type ServiceInstance } from '../registry/registry-record.codec.js';
import { buildInstanceList, diffInstances, isEmptyDiff, type DecodedEntry } from './instance-list.js';

/**
 * Follows the live instances of one service: a prefix mirror under `<namespace>/<service>/`
 * turned into a routable list. Emits only when the list changes; before the first successful
 * list it emits nothing, so "no instance yet" is never confused with "etcd unreachable".
 */
export class ServiceWatcher {
  private readonly list$ = new BehaviorSubject<readonly ServiceInstance[] | undefined>(undefined);
  private readonly mirror: PrefixMirror<DecodedEntry>;
  private readonly reported = new Set<string>();

  constructor(
    client: Etcd3,
    readonly serviceName: string,
    readonly prefix: string,
    private readonly logger: Logger,
  ) {
    this.mirror = new PrefixMirror<DecodedEntry>(client, {
      prefix,
      decode: (key, kv: IKeyValue) => ({ ...decodeRecord(kv.value), id: instanceIdOf(prefix, key) }),
      onChange: (snapshot) => this.update(snapshot),
      logger,
    });
  }

  get instances$(): Observable<readonly ServiceInstance[]> {
    return this.list$.pipe(filter((list): list is readonly ServiceInstance[] => list !== undefined));
  }

  start(): void {
    this.mirror.start();
  }

  stop(): void {
    this.mirror.stop();
    this.list$.complete();
  }

  private update(snapshot: MirrorSnapshot<DecodedEntry>): void {
    const { instances, skipped } = buildInstanceList(snapshot);
    this.reportSkipped(skipped);
    const previous = this.list$.value;
    const diff = diffInstances(previous ?? [], instances);
    if (previous !== undefined && isEmptyDiff(diff)) return;
    const parts = [
      ...diff.added.map((instance) => `+${instance.address} (${instance.id})`),
      ...diff.removed.map((instance) => `-${instance.address} (${instance.id})`),
      ...diff.changed.map((instance) => `~${instance.address} (${instance.id})`),
    ];
    if (parts.length > 0) this.logger.log(`${this.serviceName}: ${parts.join(' ')}; ${instances.length} live`);
    this.list$.next(instances);
  }

  /**
   * Each skipped key is logged once while it stays skipped (whatever garbage is rewritten there),
   * and forgotten when it goes away or becomes valid.
   */
  private reportSkipped(skipped: ReadonlyMap<string, string>): void {
    for (const [key, reason] of skipped) {
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      this.logger.warn(`${this.serviceName}: skipping ${JSON.stringify(key).slice(0, 200)}: ${reason}`);
    }
    for (const key of this.reported) if (!skipped.has(key)) this.reported.delete(key);
  }

  /** Why etcd could not be listed, while that lasts. */
  get unreachableReason(): string | undefined {
    return this.mirror.unreachableReason;
  }
}
