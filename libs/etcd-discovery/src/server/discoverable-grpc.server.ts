import * as grpc from '@grpc/grpc-js';
import { Logger } from '@nestjs/common';
import { ServerGrpc, type GrpcOptions } from '@nestjs/microservices';
import { advertisedHost } from './advertised-address.js';
import type { EtcdRegistration } from './etcd-registration.js';
import { shutdownGracefully } from './graceful-shutdown.js';
import { GrpcHealth, HEALTH_SERVICE_NAME } from './grpc-health.js';

type GrpcServerOptions = GrpcOptions['options'];

/** Nest's `channelOptions` spelled as grpc-js server options (as Nest's own createClient does). */
const MESSAGE_LIMIT_OPTIONS = [
  ['maxSendMessageLength', 'grpc.max_send_message_length'],
  ['maxReceiveMessageLength', 'grpc.max_receive_message_length'],
  ['maxMetadataSize', 'grpc.max_metadata_size'],
] as const;

/**
 * Nest's gRPC server, plus: it keeps the port it really bound (Nest throws it away, so port 0
 * could not be announced), serves `grpc.health.v1.Health` following the registration, registers
 * once its services are added, and on close withdraws the registration, drains, then shuts down
 * gracefully with a deadline.
 */
export class DiscoverableGrpcServer extends ServerGrpc {
  private readonly log = new Logger('EtcdDiscovery');
  private boundPort?: number;
  private grpcServices: string[] = [];
  private health?: GrpcHealth;

  constructor(
    private readonly grpcOptions: GrpcServerOptions,
    private readonly registration: EtcdRegistration,
  ) {
    super(grpcOptions);
  }

  /** The port the server bound; differs from the URL's when that asked for port 0. */
  get port(): number | undefined {
    return this.boundPort;
  }

  override async createClient(): Promise<grpc.Server> {
    const options: grpc.ServerOptions = { ...this.grpcOptions.channelOptions, ...this.getKeepaliveOptions() };
    for (const [option, channelOption] of MESSAGE_LIMIT_OPTIONS) {
      if (this.grpcOptions[option]) options[channelOption] = this.grpcOptions[option];
    }
    const server = new grpc.Server(options);
    const credentials = (this.grpcOptions.credentials as grpc.ServerCredentials | undefined) ?? grpc.ServerCredentials.createInsecure();
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(this.url, credentials, (error, port) => (error ? reject(error) : resolve(port))),
    );
    return server;
  }

  override loadProto(): ReturnType<ServerGrpc['loadProto']> {
    const context = super.loadProto();
    const packages = ([] as string[]).concat(this.grpcOptions.package);
    this.grpcServices = packages.flatMap((name) =>
      this.getServiceNames(this.lookupPackage(context, name) ?? {}).map((service) => `${name}.${service.name}`),
    );
    return context;
  }

  override async start(callback?: () => void): Promise<void> {
    await this.bindEvents();
    const port = this.boundPort;
    if (port === undefined) throw new Error('nestjs-etcd-discovery: the gRPC server is not bound');
    this.health = this.serveHealth(this.grpcClient as grpc.Server);
    this.registration.register({ address: { host: advertisedHost(this.url), port }, grpcServices: this.grpcServices });
    callback?.();
  }

  override async close(): Promise<void> {
    const server = this.grpcClient as grpc.Server | null;
    await this.registration.withdraw();
    if (!server) return;
    this.grpcClient = null;
    const timeoutMs = this.registration.shutdownTimeoutMs;
    const shutdown = shutdownGracefully(server, timeoutMs);
    // Only now: the server takes no new streams, so a retried Watch cannot hold it open (docs/field-notes.md).
    this.health?.endWatches();
    const outcome = await shutdown;
    if (outcome === 'forced') this.log.warn(`in-flight calls cancelled after the ${timeoutMs} ms shutdown deadline`);
  }

  /** Added after Nest's services, so an app serving its own health service keeps it (grpc-js refuses a second one). */
  private serveHealth(server: grpc.Server): GrpcHealth | undefined {
    if (!this.registration.serverOptions.healthService) return undefined;
    if (this.grpcServices.includes(HEALTH_SERVICE_NAME)) {
      this.log.warn(`the app serves its own ${HEALTH_SERVICE_NAME}; not adding the registration-driven one (server.healthService)`);
      return undefined;
    }
    const health = new GrpcHealth(this.grpcServices);
    try {
      health.addTo(server);
    } catch (error) {
      this.log.warn(`${HEALTH_SERVICE_NAME} not added (${error instanceof Error ? error.message : String(error)})`);
      return undefined;
    }
    health.follow(this.registration.state$);
    return health;
  }
}
