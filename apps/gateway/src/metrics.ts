import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/**
 * An OpenTelemetry SDK for this process, read by Prometheus on 127.0.0.1:`port`/metrics. Registered
 * globally before the app starts: nestjs-etcd-discovery finds it through @opentelemetry/api.
 */
export async function exposeMetrics(port: number): Promise<string> {
  const exporter = new PrometheusExporter({ host: '127.0.0.1', port, preventServerStart: true });
  await exporter.startServer();
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));
  return `http://127.0.0.1:${port}/metrics`;
}
