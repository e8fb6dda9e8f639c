import { Inject } from '@nestjs/common';

/** The DI token of the discovered client for a service, as registered by `forFeature`. */
export function discoveredClientToken(serviceName: string): string {
  return `nestjs-etcd-discovery:client:${serviceName}`;
}

/**
 * Injects the balanced `ClientGrpc` of a service registered with
 * `EtcdDiscoveryModule.forFeature([{ serviceName, options }])`.
 */
export function InjectDiscoveredClient(serviceName: string): PropertyDecorator & ParameterDecorator {
  return Inject(discoveredClientToken(serviceName));
}
