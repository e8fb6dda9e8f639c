// A grpc-js client of the standard grpc.health.v1.Health service (grpc-health-check's proto): Check, and Watch
// streams that record every status with the time it arrived (epochNow(), the clock the e2e processes share).
import { credentials, loadPackageDefinition, type ClientReadableStream, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';
import { epochNow } from './processes.js';

export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

interface HealthResponse {
  status: HealthStatus;
}

type HealthStub = InstanceType<ServiceClientConstructor> & {
  Check(request: { service: string }, options: { deadline: number }, callback: (error: ServiceError | null, response?: HealthResponse) => void): void;
  Watch(request: { service: string }): ClientReadableStream<HealthResponse>;
};

const Health = (() => {
  const definition = loadSync(protoPath, { keepCase: true, enums: String, defaults: true });
  const v1 = ((loadPackageDefinition(definition).grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject;
  return v1.Health as ServiceClientConstructor;
})();

/** One status a Watch received, and when. */
export interface Observed {
  status: HealthStatus;
  at: number;
}

/** One Watch stream: every status it received, and how it ended. */
export class HealthWatch {
  readonly seen: Observed[] = [];
  /** Resolves when the stream ends: its status code (0 = OK) and when. */
  readonly ended: Promise<{ code: number; details: string; at: number }>;

  constructor(readonly stream: ClientReadableStream<HealthResponse>) {
    stream.on('data', (response: HealthResponse) => this.seen.push({ status: response.status, at: epochNow() }));
    this.ended = new Promise((resolve) => {
      stream.on('status', (status) => resolve({ code: status.code, details: status.details, at: epochNow() }));
      // A cancelled or failed stream also reports 'status'; the listener only keeps an error from being thrown.
      stream.on('error', () => undefined);
    });
  }

  statuses(): HealthStatus[] {
    return this.seen.map((observed) => observed.status);
  }

  /** The first status `status` received, if any. */
  first(status: HealthStatus): Observed | undefined {
    return this.seen.find((observed) => observed.status === status);
  }
}

/** A health client on one channel to `address` (no HTTP proxy, so it stays on loopback). */
export class HealthClient {
  private readonly stub: HealthStub;
  private readonly watches: HealthWatch[] = [];

  constructor(readonly address: string) {
    this.stub = new Health(address, credentials.createInsecure(), { 'grpc.enable_http_proxy': 0 }) as HealthStub;
  }

  /** Resolves with the status; rejects with the call's ServiceError (e.g. UNIMPLEMENTED, NOT_FOUND). */
  check(service: string, deadlineMs = 2_000): Promise<HealthStatus> {
    return new Promise((resolve, reject) =>
      this.stub.Check({ service }, { deadline: Date.now() + deadlineMs }, (error, response) => (error ? reject(error) : resolve(response!.status))),
    );
  }

  watch(service: string): HealthWatch {
    const watch = new HealthWatch(this.stub.Watch({ service }));
    this.watches.push(watch);
    return watch;
  }

  close(): void {
    for (const watch of this.watches) watch.stream.cancel();
    this.stub.close();
  }
}
