export { advertisedHost } from './advertised-address.js';
export { DiscoverableGrpcServer } from './discoverable-grpc.server.js';
export { EtcdRegistration } from './etcd-registration.js';
export { shutdownGracefully, type ShutdownOutcome } from './graceful-shutdown.js';
export { withEtcdDiscovery } from './with-etcd-discovery.js';
export type { RegistrationState } from './registration-state.js';
