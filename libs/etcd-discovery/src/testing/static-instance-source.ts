import { BehaviorSubject, map, type Observable } from 'rxjs';
import type { InstanceSource } from '../discovery/instance-source.js';
import type { DiscoveryState } from '../discovery/discovery-state.js';
import { DEFAULT_NAMESPACE } from '../options/defaults.js';
import { parseHostPort } from '../common/host-port.js';
import { servicePrefix } from '../registry/registry-keys.js';
import { encodeRecord } from '../registry/registry-record.codec.js';
import { decodeEntry } from '../discovery/instance-list.js';
import type { ServiceInstance } from '../discovery/service-instance.js';

/** An instance given to the testing module: `'127.0.0.1:50051'`, or with metadata (zone, weight, version...). */
export type StaticInstance = string | { readonly address: string; readonly metadata?: Record<string, unknown>; readonly id?: string };

/**
 * Instance lists set by hand instead of read from etcd, for tests of apps that inject `ClientFactory` or
 * `@InjectDiscoveredClient`: the same resolver, policies and routing run on them. `set()` changes a list
 * while clients are live, as a membership change in etcd would. Records go through the registry's own
 * decoding, so what a test sets is what a record in etcd could hold.
 */
export class StaticInstanceSource implements InstanceSource {
  private readonly lists = new Map<string, BehaviorSubject<readonly ServiceInstance[]>>();

  constructor(
    initial: Readonly<Record<string, readonly StaticInstance[]>> = {},
    private readonly namespace = DEFAULT_NAMESPACE,
  ) {
    for (const [serviceName, instances] of Object.entries(initial)) this.set(serviceName, instances);
  }

  /** Replaces the live instances of a service; throws on an address or metadata etcd's records could not hold. */
  set(serviceName: string, instances: readonly StaticInstance[]): void {
    const prefix = this.prefixOf(serviceName);
    const list = instances.map((given, index) => toInstance(prefix, given, index));
    list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.subject(serviceName).next(list);
  }

  watch(serviceName: string): Observable<readonly ServiceInstance[]> {
    return this.subject(serviceName);
  }

  states(serviceName: string): Observable<DiscoveryState> {
    return this.subject(serviceName).pipe(map((instances) => ({ kind: 'listed' as const, instances })));
  }

  prefixOf(serviceName: string): string {
    return servicePrefix(this.namespace, serviceName);
  }

  private subject(serviceName: string): BehaviorSubject<readonly ServiceInstance[]> {
    let subject = this.lists.get(serviceName);
    if (!subject) {
      subject = new BehaviorSubject<readonly ServiceInstance[]>([]);
      this.lists.set(serviceName, subject);
    }
    return subject;
  }
}

function toInstance(prefix: string, given: StaticInstance, index: number): ServiceInstance {
  const { address: text, metadata = {}, id = `static-${index}` } = typeof given === 'string' ? { address: given } : given;
  const address = parseHostPort(text);
  if (!address) throw new Error(`nestjs-etcd-discovery/testing: "${text}" is not host:port`);
  // Read back the way a watcher reads a record from etcd.
  const entry = decodeEntry(prefix, `${prefix}${id}`, encodeRecord(address, metadata));
  if (!entry.ok) throw new Error(`nestjs-etcd-discovery/testing: instance ${text}: ${entry.reason}`);
  if (!entry.instance) throw new Error(`nestjs-etcd-discovery/testing: instance id "${id}" is not a key segment (no "/")`);
  return entry.instance;
}
