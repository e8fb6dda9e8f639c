import { experimental, type ChannelOptions } from '@grpc/grpc-js';
import { BehaviorSubject, map, type Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { DiscoveryState } from '../discovery/discovery-state.js';
import type { InstanceSource } from '../discovery/instance-source.js';
import type { ServiceInstance } from '../discovery/service-instance.js';
import { INSTANCE_SOURCE_OPTION, setup } from './etcd.resolver.js';

function instance(port: number): ServiceInstance {
  return { id: `i${port}`, key: `/services/greeter/i${port}`, address: `127.0.0.1:${port}`, host: '127.0.0.1', port, metadata: {} };
}

/** A source whose current list replays on subscribe, as the discovery hub's does. */
function sourceOf(states: BehaviorSubject<DiscoveryState>): InstanceSource {
  return {
    states: (): Observable<DiscoveryState> => states,
    watch: () => states.pipe(map((state) => (state.kind === 'listed' ? state.instances : []))),
    prefixOf: (serviceName) => `/services/${serviceName}/`,
  };
}

/** Ports of every list the resolver handed to grpc-js, in order. */
function resolverOn(source: InstanceSource): { resolver: experimental.Resolver; answers: number[][] } {
  setup();
  const answers: number[][] = [];
  const listener: experimental.ResolverListener = (endpoints) => {
    if (endpoints.ok) answers.push(endpoints.value.map((endpoint) => (endpoint.addresses[0] as { port: number }).port));
    return true;
  };
  const options: ChannelOptions = { [INSTANCE_SOURCE_OPTION]: source };
  const resolver = experimental.createResolver({ scheme: 'etcd', authority: '', path: 'greeter' }, listener, options);
  return { resolver, answers };
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('EtcdResolver timing', () => {
  const resolvers: experimental.Resolver[] = [];
  afterEach(() => resolvers.splice(0).forEach((resolver) => resolver.destroy()));

  it('answers the replayed list on a later turn of the event loop, never inside updateResolution()', async () => {
    const states = new BehaviorSubject<DiscoveryState>({ kind: 'listed', instances: [instance(1)] });
    const { resolver, answers } = resolverOn(sourceOf(states));
    resolvers.push(resolver);
    resolver.updateResolution();
    await Promise.resolve();
    expect(answers).toEqual([]);
    await nextTurn();
    expect(answers).toEqual([[1]]);
  });

  it('hands a later change to grpc-js before callbacks the event loop already holds (no setImmediate hop)', async () => {
    const states = new BehaviorSubject<DiscoveryState>({ kind: 'listed', instances: [instance(1)] });
    const { resolver, answers } = resolverOn(sourceOf(states));
    resolvers.push(resolver);
    resolver.updateResolution();
    await nextTurn();

    // As under load: other callbacks are queued when etcd's event arrives.
    const seenByQueuedCallback = new Promise<number[][]>((resolve) => setImmediate(() => resolve([...answers])));
    states.next({ kind: 'listed', instances: [instance(1), instance(2)] });
    expect(answers).toEqual([[1]]); // not inside the watcher's own emission either
    expect(await seenByQueuedCallback).toEqual([[1], [1, 2]]);
  });

  it('a change arriving while the replayed list still waits is answered after it, never overtaking it', async () => {
    const states = new BehaviorSubject<DiscoveryState>({ kind: 'listed', instances: [instance(1)] });
    const { resolver, answers } = resolverOn(sourceOf(states));
    resolvers.push(resolver);
    resolver.updateResolution();
    states.next({ kind: 'listed', instances: [instance(1), instance(2)] });
    await Promise.resolve();
    await nextTurn();
    await nextTurn();
    expect(answers).toEqual([[1], [1, 2]]);
  });

  it('drops a change that arrives after destroy()', async () => {
    const states = new BehaviorSubject<DiscoveryState>({ kind: 'listed', instances: [instance(1)] });
    const { resolver, answers } = resolverOn(sourceOf(states));
    resolver.updateResolution();
    await nextTurn();
    states.next({ kind: 'listed', instances: [instance(2)] });
    resolver.destroy();
    await nextTurn();
    expect(answers).toEqual([[1]]);
  });
});
