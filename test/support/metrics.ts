// An OpenTelemetry SDK MeterProvider registered as the app's global one, and its metrics read on demand:
// what an app with an SDK gives the library, without an exporter or a timer.
import type { Attributes } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type DataPoint } from '@opentelemetry/sdk-metrics';
import { loadOtelApi } from '../../libs/etcd-discovery/src/telemetry/otel-api.js';

class CollectingReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

export interface Point {
  readonly attributes: Attributes;
  readonly value: number;
}

export interface CollectedMetrics {
  /** The data points of one instrument, by name; [] when it has none. */
  points(name: string): Promise<Point[]>;
  /** The value of the point whose attributes include `match`; 0 when there is none. */
  value(name: string, match?: Attributes): Promise<number>;
  /** Unregisters the provider and shuts it down. */
  close(): Promise<void>;
}

/** The part of the API's `metrics` an app registers its provider with. */
export interface MetricsRegistry {
  disable(): void;
  setGlobalMeterProvider(provider: never): boolean;
}

/**
 * Registers an SDK MeterProvider, by default through the copy of @opentelemetry/api the library loads (as
 * CommonJS). An app has one copy of the API, so registering through "the" API is what an app does.
 */
export function registerMeterProvider(registry: MetricsRegistry | undefined = loadOtelApi()?.metrics): CollectedMetrics {
  if (!registry) throw new Error('@opentelemetry/api is not installed');
  const reader = new CollectingReader();
  const provider = new MeterProvider({ readers: [reader] });
  registry.disable();
  if (!registry.setGlobalMeterProvider(provider as never)) {
    throw new Error('the MeterProvider could not be registered');
  }
  const points = async (name: string): Promise<Point[]> => {
    const { resourceMetrics, errors } = await reader.collect();
    if (errors.length > 0) throw new Error(`collect failed: ${errors.join('; ')}`);
    const metric = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((candidate) => candidate.descriptor.name === name);
    return ((metric?.dataPoints ?? []) as DataPoint<number>[]).map(({ attributes, value }) => ({ attributes, value }));
  };
  return {
    points,
    async value(name, match = {}) {
      const found = (await points(name)).filter((point) => Object.entries(match).every(([key, value]) => point.attributes[key] === value));
      if (found.length > 1) throw new Error(`${found.length} points of ${name} match ${JSON.stringify(match)}`);
      return found[0]?.value ?? 0;
    },
    async close() {
      registry.disable();
      await provider.shutdown();
    },
  };
}
