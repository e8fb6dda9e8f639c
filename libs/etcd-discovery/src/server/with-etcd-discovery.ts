import type { AsyncMicroserviceOptions, CustomStrategy, GrpcOptions } from '@nestjs/microservices';
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
    inject: [EtcdRegistration],
    useFactory: (registration: EtcdRegistration): CustomStrategy => ({ strategy: new DiscoverableGrpcServer(options, registration) }),
  };
}
