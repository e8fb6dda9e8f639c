// In-process Nest apps for the security checks: a serving greeter (createMicroservice + withEtcdDiscovery) and a
// calling app (ClientFactory), both built from the package's public API (its source barrel, so the checks run
// against the library as it is now, without a rebuild). Every app gets the check file's recording logger.
import { Controller, Inject, Module, type INestApplicationContext, type INestMicroservice, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata, ServerCredentials, ServerUnaryCall } from '@grpc/grpc-js';
import { firstValueFrom, type Observable } from 'rxjs';
import {
  ClientFactory,
  EtcdDiscoveryModule,
  EtcdRegistration,
  withEtcdDiscovery,
  type DiscoveredClientOptions,
  type EtcdDiscoveryModuleOptions,
} from '../../libs/etcd-discovery/src/index.js';
import { GREETER_PROTO_PATH, type HelloReply } from '../support/greeter-proto.js';

/** Client options every check starts from: the greeter proto, and a deadline so no call can hang a check. */
export const GREETER_CLIENT: DiscoveredClientOptions = { package: 'greeter', protoPath: GREETER_PROTO_PATH, timeoutMs: 5_000 };

export interface GreeterService {
  sayHello(request: { name: string }): Observable<HelloReply>;
}

@Controller()
class GreeterController {
  constructor(@Inject(EtcdRegistration) private readonly registration: EtcdRegistration) {}

  /** `address` carries the authority the call arrived with (the name TLS checked the certificate against). */
  @GrpcMethod('Greeter', 'SayHello')
  sayHello({ name }: { name: string }, _metadata: Metadata, call: ServerUnaryCall<unknown, HelloReply>): HelloReply {
    return { message: `Hello, ${name}!`, instanceId: this.registration.instanceId, address: call.getHost() };
  }
}

export interface ServingApp {
  readonly app: INestMicroservice;
  readonly registration: EtcdRegistration;
  close(): Promise<void>;
}

export interface ServingAppOptions {
  /** Module options; `registration` defaults to the greeter service. */
  readonly discovery: EtcdDiscoveryModuleOptions;
  /** gRPC bind address; default 127.0.0.1:0. */
  readonly url?: string;
  readonly credentials?: ServerCredentials;
  readonly logger: LoggerService;
}

/** A greeter serving app, listening; registration runs in the background (await `registration.whenRegistered()`). */
export async function startServingApp(options: ServingAppOptions): Promise<ServingApp> {
  @Module({
    imports: [EtcdDiscoveryModule.forRoot({ registration: { serviceName: 'greeter' }, ...options.discovery })],
    controllers: [GreeterController],
  })
  class ServingModule {}

  const app = await NestFactory.createMicroservice(ServingModule, {
    ...withEtcdDiscovery({
      package: 'greeter',
      protoPath: GREETER_PROTO_PATH,
      url: options.url ?? '127.0.0.1:0',
      ...(options.credentials ? { credentials: options.credentials } : {}),
    }),
    logger: options.logger,
    abortOnError: false,
  });
  try {
    await app.listen();
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
  return { app, registration: app.get(EtcdRegistration), close: once(() => app.close()) };
}

export interface CallingApp {
  readonly app: INestApplicationContext;
  readonly clients: ClientFactory;
  close(): Promise<void>;
}

/** An app that only calls services: the module without registration, and its ClientFactory. */
export async function startCallingApp(discovery: EtcdDiscoveryModuleOptions, logger: LoggerService): Promise<CallingApp> {
  const app = await NestFactory.createApplicationContext(EtcdDiscoveryModule.forRoot(discovery), { logger, abortOnError: false });
  return { app, clients: app.get(ClientFactory), close: once(() => app.close()) };
}

/** The greeter stub from a calling app, once discovery found an instance (or the wait timed out). */
export function greeterOf(calling: CallingApp, options: DiscoveredClientOptions = GREETER_CLIENT): Promise<GreeterService> {
  return firstValueFrom(calling.clients.getService<GreeterService>('greeter', 'Greeter', options));
}

/** `count` calls one after another; the replies' instance ids with their counts. */
export async function callMany(greeter: GreeterService, count: number): Promise<Map<string, number>> {
  const byInstance = new Map<string, number>();
  for (let index = 0; index < count; index++) {
    const reply = await firstValueFrom(greeter.sayHello({ name: `call-${index}` }));
    byInstance.set(reply.instanceId, (byInstance.get(reply.instanceId) ?? 0) + 1);
  }
  return byInstance;
}

/** The grpc-js error of one call that is expected to fail (throws if it succeeds). */
export async function failedCall(greeter: GreeterService): Promise<{ code: number; details: string }> {
  const outcome = await firstValueFrom(greeter.sayHello({ name: 'expect-failure' })).then(
    (reply) => ({ reply }),
    (error: unknown) => ({ error: error as { code?: number; details?: string; message?: string } }),
  );
  if ('reply' in outcome) throw new Error(`the call succeeded (answered by ${outcome.reply.instanceId}) where it had to fail`);
  return { code: outcome.error.code ?? -1, details: outcome.error.details ?? outcome.error.message ?? String(outcome.error) };
}

function once(action: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= action());
}
