import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { withEtcdDiscovery } from 'nestjs-etcd-discovery';
import { AppModule } from './app.module.js';
import { GREETER_PROTO_PATH } from './greeter.proto-path.js';

async function bootstrap(): Promise<void> {
  // The one discovery step: wrap the usual gRPC options. Port 0 picks a free port; the real one is registered.
  const app = await NestFactory.createMicroservice(
    AppModule,
    withEtcdDiscovery({ package: 'greeter', protoPath: GREETER_PROTO_PATH, url: process.env.GRPC_URL ?? '127.0.0.1:0' }),
  );
  app.enableShutdownHooks();
  await app.listen();
}

void bootstrap();
