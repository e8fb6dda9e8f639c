import type { AsyncMicroserviceOptions, CustomStrategy, GrpcOptions } from '@nestjs/microservices';
import { RESOLVED_DISCOVERY_OPTIONS } from '../module/etcd-discovery.constants.js';
import type { ResolvedDiscoveryOptions } from '../module/resolved-options.js';
import { DiscoverableGrpcServer } from './discoverable-grpc.server.js';
import { EtcdRegistration } from './etcd-registration.js';

/**
 * The one change to a serving app's `main.ts`: wrap the gRPC options you already pass.
 *
 * ```ts
 * const app = await NestFactory.createMicroservice(AppModule, withEtcdDiscovery({ package: 'hero', protoPath }));
 * // hybrid: app.connectMicroservice(withEtcdDiscovery({ package: 'hero', protoPath, url: '0.0.0.0:50051' }));
 * ```
 * The server is Nest's own gRPC transport, resolved from DI so it can register itself.
 */
export function withEtcdDiscovery(options: GrpcOptions['options']): AsyncMicroserviceOptions & { useFactory: (...args: never[]) => CustomStrategy } {
  return {
    inject: [EtcdRegistration, RESOLVED_DISCOVERY_OPTIONS],
    useFactory: (registration: EtcdRegistration, resolved: ResolvedDiscoveryOptions): CustomStrategy => ({
      strategy: new DiscoverableGrpcServer(options, registration, resolved.server.shutdownTimeoutMs),
    }),
  };
}
