import type { Counter, Meter, ObservableCallback, ObservableUpDownCounter } from '@opentelemetry/api';

/** Attribute names. `service.name` is the emitting process (a resource attribute) and `rpc.service` a proto service: neither is a discovery name. */
export const ATTRIBUTES = {
  service: 'etcd_discovery.service',
  change: 'etcd_discovery.change',
  registrationState: 'etcd_discovery.registration.state',
  prefix: 'etcd_discovery.prefix',
  serverAddress: 'server.address',
  serverPort: 'server.port',
} as const;

interface InstrumentSpec {
  readonly kind: 'counter' | 'observableUpDownCounter';
  readonly name: string;
  readonly unit: string;
  readonly description: string;
}

/**
 * Every instrument of the library, in one place (the README's Metrics table lists the same). Names
 * follow OpenTelemetry's rules: one namespace of our own, counters pluralized with a `{noun}` unit,
 * an UpDownCounter of things named `.count`, a 1/0 state set named `.status` as `hw.status` is.
 */
export const INSTRUMENTS = {
  instanceCount: {
    kind: 'observableUpDownCounter',
    name: 'etcd_discovery.instance.count',
    unit: '{instance}',
    description: 'Live instances of a followed service, as this process last listed them from etcd',
  },
  membershipChanges: {
    kind: 'counter',
    name: 'etcd_discovery.membership.changes',
    unit: '{change}',
    description: 'Instances that joined, left or changed their record, after the first listing of the service',
  },
  leaseGrants: {
    kind: 'counter',
    name: 'etcd_discovery.lease.grants',
    unit: '{lease}',
    description: 'Leases granted to this process (1, plus one per lost lease replaced)',
  },
  leaseLosses: {
    kind: 'counter',
    name: 'etcd_discovery.lease.losses',
    unit: '{lease}',
    description: "Leases of this process that etcd let expire or no longer knows",
  },
  watchResyncs: {
    kind: 'counter',
    name: 'etcd_discovery.watch.resyncs',
    unit: '{resync}',
    description: 'Times a watch ended (disconnect, compaction, cancel) and the prefix was listed again',
  },
  registrationStatus: {
    kind: 'observableUpDownCounter',
    name: 'etcd_discovery.registration.status',
    unit: '1',
    description: "1 for the registration's current state, 0 for the states it was in before",
  },
  callsWithoutInstance: {
    kind: 'counter',
    name: 'etcd_discovery.client.calls_without_instance',
    unit: '{call}',
    description: 'Calls that failed UNAVAILABLE because discovery had no instance to send them to',
  },
  picks: {
    kind: 'counter',
    name: 'etcd_discovery.client.picks',
    unit: '{pick}',
    description: 'Calls sent to an endpoint by the p2c_ewma or metadata_weighted policy',
  },
  p2cEjections: {
    kind: 'counter',
    name: 'etcd_discovery.client.p2c.ejections',
    unit: '{ejection}',
    description: 'Endpoints p2c_ewma took out of rotation after an UNAVAILABLE answer',
  },
} as const satisfies Record<string, InstrumentSpec>;

type Specs = typeof INSTRUMENTS;
export type Instruments = {
  readonly [K in keyof Specs]: Specs[K]['kind'] extends 'counter' ? Counter : ObservableUpDownCounter;
};

export type Observers = { readonly [K in keyof Specs as Specs[K]['kind'] extends 'counter' ? never : K]: ObservableCallback };

/** The instruments on `meter`, observable ones reading through `observers`. */
export function createInstruments(meter: Meter, observers: Observers): Instruments {
  const created: Record<string, Counter | ObservableUpDownCounter> = {};
  for (const [key, spec] of Object.entries(INSTRUMENTS) as [keyof Specs, InstrumentSpec][]) {
    const options = { unit: spec.unit, description: spec.description };
    if (spec.kind === 'counter') {
      created[key] = meter.createCounter(spec.name, options);
    } else {
      const observable = meter.createObservableUpDownCounter(spec.name, options);
      observable.addCallback(observers[key as keyof Observers]);
      created[key] = observable;
    }
  }
  return created as Instruments;
}
