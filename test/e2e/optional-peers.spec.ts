// The packed library installed without its optional peers (@opentelemetry/api, @nestjs/terminus), as npm installs
// it for an app that depends on neither: it loads, registers a server and routes a call to it, with metrics off.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueNamespace } from '../support/etcd.js';
import { GREETER_PROTO_PATH } from '../support/greeter-proto.js';
import { useEtcd } from '../support/use-etcd.js';
import { installPacked, packLibrary, run } from './packed-package.js';

const OPTIONAL_PEERS = ['@opentelemetry/api', '@nestjs/terminus'];

// Plain JavaScript, as an app without a compiler would write it: decorators applied by hand.
const APP = `import 'reflect-metadata';
import { createRequire } from 'node:module';
import { Controller, Inject, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { GrpcMethod } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { ClientFactory, EtcdDiscoveryModule, EtcdRegistration, withEtcdDiscovery } from 'nestjs-etcd-discovery';

const [etcd, namespace, protoPath, optionalPeers] = process.argv.slice(2);
const fromLibrary = createRequire(import.meta.resolve('nestjs-etcd-discovery'));
const resolvable = JSON.parse(optionalPeers).filter((name) => {
  try {
    return Boolean(fromLibrary.resolve(name));
  } catch {
    return false;
  }
});

class GreeterController {
  constructor(registration) {
    this.registration = registration;
  }
  sayHello({ name }) {
    return { message: 'hello ' + name, instanceId: this.registration.instanceId };
  }
}
Inject(EtcdRegistration)(GreeterController, undefined, 0);
GrpcMethod('Greeter', 'SayHello')(GreeterController.prototype, 'sayHello', Object.getOwnPropertyDescriptor(GreeterController.prototype, 'sayHello'));
Controller()(GreeterController);
const options = { etcd: { hosts: [etcd] }, namespace, server: { ttlSeconds: 5, drainDelayMs: 0 } };
class ServerModule {}
Module({ imports: [EtcdDiscoveryModule.forRoot({ ...options, registration: { serviceName: 'greeter' } })], controllers: [GreeterController] })(ServerModule);

const server = await NestFactory.createMicroservice(ServerModule, { ...withEtcdDiscovery({ package: 'greeter', protoPath, url: '127.0.0.1:0' }), logger: false });
await server.listen();
await server.get(EtcdRegistration).whenRegistered();
const client = await NestFactory.createApplicationContext(EtcdDiscoveryModule.forRoot(options), { logger: false });
const greeter = await firstValueFrom(client.get(ClientFactory).getService('greeter', 'Greeter', { package: 'greeter', protoPath, loadBalancing: 'p2c_ewma' }));
const reply = await firstValueFrom(greeter.sayHello({ name: 'no-otel' }));
console.log(JSON.stringify({ resolvable, reply, instanceId: server.get(EtcdRegistration).instanceId }));
await client.close();
await server.close();
`;

describe('npm package without its optional peers', () => {
  const fx = useEtcd();
  let work: string | undefined;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'etcd-discovery-no-peers-'));
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('registers and discovers without @opentelemetry/api and @nestjs/terminus installed', async () => {
    const app = join(work!, 'app');
    const manifest = await installPacked(await packLibrary(work!), join(app, 'node_modules'), { optionalPeers: false });
    expect(OPTIONAL_PEERS.filter((name) => manifest.peerDependenciesMeta?.[name]?.optional)).toEqual(OPTIONAL_PEERS);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await writeFile(join(app, 'app.mjs'), APP);

    // execFile's timeout kills the child by PID if it hangs.
    const { stdout } = await run(process.execPath, ['app.mjs', fx.etcd.endpoint, uniqueNamespace('no-peers'), GREETER_PROTO_PATH, JSON.stringify(OPTIONAL_PEERS)], {
      cwd: app,
      timeout: 25_000,
    });
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as { resolvable: string[]; reply: { message: string; instanceId: string }; instanceId: string };
    console.log(`[no-peers] ${JSON.stringify(result)}`);
    expect(result.resolvable).toEqual([]);
    expect(result.reply).toEqual({ message: 'hello no-otel', instanceId: result.instanceId });
  }, 60_000);
});
