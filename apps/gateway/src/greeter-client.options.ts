import { fileURLToPath } from 'node:url';
import type { DiscoveredClientOptions } from 'nestjs-etcd-discovery';

/** How the gateway talks to greeter: Nest's usual gRPC client options, minus the url. */
export const GREETER_CLIENT_OPTIONS: DiscoveredClientOptions = {
  package: 'greeter',
  protoPath: fileURLToPath(new URL('../../greeter/proto/greeter.proto', import.meta.url)),
  loadBalancing: 'round_robin',
  // SayHello is idempotent, so a call that hit a replica dying under it may be retried on another.
  retry: { maxAttempts: 3 },
};

export interface HelloReply {
  message: string;
  instanceId: string;
  address: string;
}

export interface GreeterService {
  sayHello(request: { name: string; delayMs?: number }): import('rxjs').Observable<HelloReply>;
  streamHellos(request: { name: string; count?: number }): import('rxjs').Observable<HelloReply>;
}
