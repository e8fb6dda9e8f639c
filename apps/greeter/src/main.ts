import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { withEtcdDiscovery } from 'nestjs-etcd-discovery';
import { AppModule } from './app.module.js';
import { GREETER_PROTO_PATH } from './greeter.proto-path.js';

// Port 0 picks a free port; the port really bound is the one registered.
const grpcOptions = { package: 'greeter', protoPath: GREETER_PROTO_PATH, url: process.env.GRPC_URL ?? '127.0.0.1:0' };

/** A standalone gRPC microservice: the usual createMicroservice, options wrapped once. */
async function standalone(): Promise<void> {
  const app = await NestFactory.createMicroservice(AppModule, withEtcdDiscovery(grpcOptions));
  app.enableShutdownHooks();
  await app.listen();
}

/** A hybrid app (HTTP + gRPC): the same wrapper passed to connectMicroservice. */
async function hybrid(httpPort: number): Promise<void> {
  const app = await NestFactory.create(AppModule);
  app.connectMicroservice(withEtcdDiscovery(grpcOptions));
  app.enableShutdownHooks();
  await app.startAllMicroservices();
  await app.listen(httpPort, '127.0.0.1');
  console.log(`greeter http listening on ${await app.getUrl()}`);
}

const httpPort = process.env.HTTP_PORT;
void (httpPort === undefined ? standalone() : hybrid(Number(httpPort)));
