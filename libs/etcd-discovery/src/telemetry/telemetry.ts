import type { experimental } from '@grpc/grpc-js';
import { Logger } from '@nestjs/common';
import type { Attributes, MeterProvider, ObservableResult } from '@opentelemetry/api';
import { errorMessage } from '../common/backoff.js';
import { printable } from '../common/printable.js';
import { ATTRIBUTES, createInstruments, type Instruments } from './instruments.js';
import { globalOtelRegistry, libraryVersion, loadOtelApi, type OtelApi } from './otel-api.js';

export const METER_NAME = 'nestjs-etcd-discovery';

/** One registration's state, and the states it has been in (reported 0 once left). */
interface TrackedRegistration {
  current?: string;
  readonly seen: Set<string>;
}

/**
 * Live counts of the services followed, per watcher. A service no watcher follows any more stays, at 0:
 * the SDK goes on exporting the last value of an attribute set no longer observed, a count long gone.
 */
const followedServices = new Map<string, Map<ServiceMetrics, number>>();
const registrations = new Set<TrackedRegistration>();
const logger = new Logger('EtcdDiscovery');

/** undefined: not looked for yet; null: not installed. */
let api: OtelApi | null | undefined;
let bound: { provider: MeterProvider; instruments: Instruments; enabled: boolean } | undefined;
let foreignProviderReported = false;

/**
 * The instruments on the app's current MeterProvider, made on first use and again whenever the app
 * registers another one. OpenTelemetry's metrics API has no proxy provider (tracing has one): a meter
 * taken before the app registers its SDK stays a no-op for good, and apps register after importing us.
 * Undefined without the API; the API's no-op instruments without an SDK.
 */
function instruments(): Instruments | undefined {
  if (api === undefined) api = loadOtelApi() ?? null;
  if (api === null) return undefined;
  const provider = api.metrics.getMeterProvider();
  if (bound?.provider === provider) return bound.instruments;
  try {
    const meter = provider.getMeter(METER_NAME, libraryVersion());
    bound = { provider, instruments: createInstruments(meter, OBSERVERS), enabled: meter !== api.createNoopMeter?.() };
  } catch (error) {
    // A provider that throws must not break discovery: go without metrics from then on, and say so once.
    logger.warn(`OpenTelemetry instruments could not be created (${printable(errorMessage(error))}); metrics of nestjs-etcd-discovery are off`);
    api = null;
    return undefined;
  }
  return bound.instruments;
}

/** True when an SDK collects what we record (a MeterProvider is registered); cheap enough per call. */
export function metricsEnabled(): boolean {
  return instruments() !== undefined && bound!.enabled;
}

/**
 * A MeterProvider registered by another copy of the API, which ours refuses (an API only reads a global
 * of its own minor version or newer): metrics stay off without a word from OpenTelemetry. Say it once.
 */
function reportForeignProvider(): void {
  if (foreignProviderReported || !api || bound?.enabled !== false) return;
  const registry = globalOtelRegistry();
  if (registry?.metrics === undefined) return;
  foreignProviderReported = true;
  logger.warn(
    `an OpenTelemetry MeterProvider is registered through @opentelemetry/api ${registry.version ?? '(unknown version)'}, which the copy ` +
      'nestjs-etcd-discovery loads does not accept; its metrics are off. Install one copy of @opentelemetry/api (npm ls @opentelemetry/api)',
  );
}

const OBSERVERS = {
  instanceCount(result: ObservableResult): void {
    // Two watchers of one service in a process (two apps) list the same etcd: report it once.
    for (const [service, watchers] of followedServices) result.observe(Math.max(0, ...watchers.values()), { [ATTRIBUTES.service]: service });
  },
  registrationStatus(result: ObservableResult): void {
    const counts = new Map<string, number>();
    for (const { current, seen } of registrations) {
      for (const state of seen) counts.set(state, (counts.get(state) ?? 0) + (state === current ? 1 : 0));
    }
    for (const [state, count] of counts) result.observe(count, { [ATTRIBUTES.registrationState]: state });
  },
};

/** A membership diff; only its lengths are read. */
export interface MembershipDiff {
  readonly added: readonly unknown[];
  readonly removed: readonly unknown[];
  readonly changed: readonly unknown[];
}

/** What a service watcher reports; attribute objects made once, not per event. */
export class ServiceMetrics {
  private readonly attributes: { readonly joined: Attributes; readonly left: Attributes; readonly changed: Attributes };

  constructor(readonly service: string) {
    const change = (kind: string): Attributes => ({ [ATTRIBUTES.service]: service, [ATTRIBUTES.change]: kind });
    this.attributes = { joined: change('joined'), left: change('left'), changed: change('changed') };
  }

  /** A new list of `count` instances; `diff` from the previous one, undefined for the first listing. */
  listed(count: number, diff: MembershipDiff | undefined): void {
    let watchers = followedServices.get(this.service);
    if (!watchers) followedServices.set(this.service, (watchers = new Map()));
    watchers.set(this, count);
    const meters = instruments();
    reportForeignProvider();
    if (!meters || !diff) return;
    if (diff.added.length > 0) meters.membershipChanges.add(diff.added.length, this.attributes.joined);
    if (diff.removed.length > 0) meters.membershipChanges.add(diff.removed.length, this.attributes.left);
    if (diff.changed.length > 0) meters.membershipChanges.add(diff.changed.length, this.attributes.changed);
  }

  stopped(): void {
    followedServices.get(this.service)?.delete(this);
  }
}

/** What a balancer reports about one endpoint of a service; made with the picker, used per pick. */
export class EndpointMetrics {
  private readonly attributes: Attributes;

  constructor(service: string | undefined, host: string, port?: number) {
    this.attributes = {
      ...(service === undefined ? {} : { [ATTRIBUTES.service]: service }),
      [ATTRIBUTES.serverAddress]: host,
      ...(port === undefined ? {} : { [ATTRIBUTES.serverPort]: port }),
    };
  }

  /** For a grpc-js endpoint: its first address, and the service the etcd resolver put on it. */
  static of(endpoint: experimental.Endpoint): EndpointMetrics {
    const { serviceName } = endpoint as { serviceName?: unknown };
    const address = endpoint.addresses[0];
    const service = typeof serviceName === 'string' ? serviceName : undefined;
    if (address === undefined) return new EndpointMetrics(service, '');
    return 'host' in address ? new EndpointMetrics(service, address.host, address.port) : new EndpointMetrics(service, address.path);
  }

  picked(): void {
    instruments()?.picks.add(1, this.attributes);
  }

  ejected(): void {
    instruments()?.p2cEjections.add(1, this.attributes);
  }
}

/** Per-service attributes of `calls_without_instance`, made once per client. */
export class ClientMetrics {
  private readonly attributes: Attributes;

  constructor(service: string) {
    this.attributes = { [ATTRIBUTES.service]: service };
  }

  callWithoutInstance(): void {
    instruments()?.callsWithoutInstance.add(1, this.attributes);
  }
}

export function leaseGranted(): void {
  instruments()?.leaseGrants.add(1);
  reportForeignProvider();
}

export function leaseLost(): void {
  instruments()?.leaseLosses.add(1);
}

/** A watch on `prefix` ended and the prefix is listed again. */
export function watchResynced(prefix: string): void {
  instruments()?.watchResyncs.add(1, { [ATTRIBUTES.prefix]: prefix });
}

/** `EtcdRegistration.state$` as far as telemetry needs it (telemetry imports nothing above common/). */
export interface StateSource {
  subscribe(observer: { next: (state: string) => void }): unknown;
}

/**
 * Reports a registration's states; once it completes (after `deregistered`) that state stays reported,
 * the SDK would otherwise go on exporting the one before. `idle` is left out: a process that never
 * registers (a pure client) has no status to show, and is not kept.
 */
export function followRegistration(states: StateSource): void {
  const tracked: TrackedRegistration = { seen: new Set() };
  states.subscribe({
    next: (state) => {
      if (state === 'idle') return;
      tracked.current = state;
      tracked.seen.add(state);
      registrations.add(tracked);
      instruments();
      reportForeignProvider();
    },
  });
}
