// Registering as a serving app does, through the package's public entry point: a Nest application context
// with EtcdDiscoveryModule and `registration`, whose EtcdRegistration is given the bound endpoint (what the
// gRPC server of withEtcdDiscovery() does once it listens). The servers are plain grpc-js servers
// (greeter-server.mjs), so one process can stand for many instances: one context per instance, each with
// its own etcd client and lease, or one context registering many records under its one lease.
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { ClientFactory, EtcdDiscoveryModule, EtcdRegistration } from 'nestjs-etcd-discovery';
import { firstValueFrom } from 'rxjs';
import { now } from './common.mjs';

export const METADATA = { version: '1.0.0', zone: 'local' };
export const GRPC_SERVICES = ['greeter.Greeter'];

/** An instance's endpoint on loopback, as the gRPC server reports it once bound. */
export const loopbackEndpoint = (port) => ({ address: { host: '127.0.0.1', port }, grpcServices: GRPC_SERVICES });

/**
 * A registering app context, not yet registered. `registration` is the module option (one
 * RegistrationOptions or an array). No drain delay: the benchmarks time the removal itself.
 */
export async function openRegistration({ hosts, namespace = '/services', ttlSeconds = 10, keepaliveIntervalMs, registration }) {
  const app = await NestFactory.createApplicationContext(
    EtcdDiscoveryModule.forRoot({ etcd: { hosts, keepaliveIntervalMs }, namespace, server: { ttlSeconds, drainDelayMs: 0 }, registration }),
    { logger: ['error', 'warn'] },
  );
  const etcdRegistration = app.get(EtcdRegistration);
  let closing;
  return {
    registration: etcdRegistration,
    /**
     * Opens this context's etcd connection with a read (an instance list of a service nobody registers), so a
     * timed register() that follows is not also timing the connection setup.
     */
    warmConnection: () => firstValueFrom(app.get(ClientFactory).instances('bench-warm-up')),
    /** Registers at `startedAt`; resolves once every record is in etcd (lease granted, create-only put done). */
    async register(endpoint) {
      const startedAt = now();
      etcdRegistration.register(endpoint);
      await etcdRegistration.whenRegistered();
      return { startedAt, ackedAt: now() };
    },
    /** Withdraws (keys removed, lease revoked) and closes the context; safe to call again. */
    close: () => (closing ??= app.close()),
  };
}

/** One instance registered under its own lease: open, register, resolve once in etcd. */
export async function registerInstance(options, endpoint) {
  const opened = await openRegistration(options);
  try {
    return { ...opened, ...(await opened.register(endpoint)) };
  } catch (error) {
    await opened.close();
    throw error;
  }
}
