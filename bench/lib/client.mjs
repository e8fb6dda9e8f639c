// The calling side, written as a user's app would be: a Nest application context with
// EtcdDiscoveryModule (the public API, imported by package name) and ClientGrpc services; plus a plain
// Nest ClientGrpcProxy on a static target as the baseline; and the load generators.
import 'reflect-metadata';
import { Metadata } from '@grpc/grpc-js';
import { NestFactory } from '@nestjs/core';
import { ClientGrpcProxy } from '@nestjs/microservices';
import { ClientFactory, EtcdDiscoveryModule } from 'nestjs-etcd-discovery';
import { firstValueFrom } from 'rxjs';
import { GREETER_PROTO, now, sleep } from './common.mjs';
import { newHistogram, recordMs } from './hdr.mjs';

export const GREETER_CLIENT_OPTIONS = { package: 'greeter', protoPath: GREETER_PROTO };
const CALL_DEADLINE_MS = 5_000;

/** A Nest application context holding only the discovery module, as a client-only app has it. */
export async function createDiscoveryContext({ hosts, namespace }) {
  const app = await NestFactory.createApplicationContext(
    EtcdDiscoveryModule.forRoot({ etcd: { hosts }, namespace }),
    { logger: ['error', 'warn'] },
  );
  return { app, factory: app.get(ClientFactory) };
}

/** The discovered Greeter service (etcd:///greeter through our resolver), once an instance is live. */
export function discoveredGreeter(factory, options = {}) {
  return firstValueFrom(factory.getService('greeter', 'Greeter', { ...GREETER_CLIENT_OPTIONS, ...options }));
}

/**
 * Nest's own gRPC client on a static multi-address target with round robin: the baseline. `id` gives it
 * connections of its own: grpc-js shares connections between channels whose options are equal.
 */
export function staticGreeter(addresses, id = 'static') {
  const client = new ClientGrpcProxy({
    ...GREETER_CLIENT_OPTIONS,
    url: `ipv4:${addresses.join(',')}`,
    channelOptions: {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
      'bench.client_id': id,
    },
  });
  return { client, service: client.getService('Greeter') };
}

/** One unary SayHello through a Nest ClientGrpc service; resolves with the reply. */
export function sayHello(service, delayMs = 0) {
  return firstValueFrom(service.sayHello({ name: 'bench', delayMs }, new Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }));
}

/**
 * `concurrency` workers calling back to back, for `durationMs` or until `calls` were issued.
 * Returns the latency histogram (successful calls), counts and throughput (calls/s).
 */
export async function closedLoop({ concurrency, durationMs, calls, call, onReply }) {
  const histogram = newHistogram();
  let issued = 0;
  let completed = 0;
  let failed = 0;
  let firstError;
  const startedAt = now();
  const cpuBefore = process.cpuUsage();
  const endAt = durationMs === undefined ? Infinity : startedAt + durationMs;
  const more = () => (calls === undefined ? now() < endAt : issued < calls);
  const worker = async () => {
    while (more()) {
      issued += 1;
      const t = now();
      try {
        const reply = await call();
        recordMs(histogram, now() - t);
        completed += 1;
        onReply?.(reply);
      } catch (error) {
        failed += 1;
        firstError ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    histogram, completed, failed, firstError, elapsedMs,
    throughput: (completed * 1000) / elapsedMs,
    /** This process's CPU time (user + system) per completed call, microseconds. */
    cpuUsPerCall: (cpu.user + cpu.system) / Math.max(1, completed),
  };
}

/** Calls at a steady `ratePerSec` (at most `maxInFlight` at once) until `stop()`; counts failures. */
export function steadyLoad({ ratePerSec, maxInFlight = 64, call }) {
  let running = true;
  let issued = 0;
  let completed = 0;
  let failed = 0;
  let inFlight = 0;
  let dropped = 0;
  const errors = [];
  const startedAt = now();
  const done = (async () => {
    while (running) {
      const due = Math.floor(((now() - startedAt) * ratePerSec) / 1000);
      while (issued < due && inFlight < maxInFlight) {
        issued += 1;
        inFlight += 1;
        call().then(
          () => { completed += 1; },
          (error) => {
            failed += 1;
            if (errors.length < 5) errors.push(String(error?.details ?? error?.message ?? error));
          },
        ).finally(() => { inFlight -= 1; });
      }
      if (issued < due) {
        dropped += due - issued; // behind schedule or at the in-flight cap: skip, do not burst later
        issued = due;
      }
      await sleep(1);
    }
    while (inFlight > 0) await sleep(5);
  })();
  return {
    async stop() {
      running = false;
      await done;
      return { issued, completed, failed, dropped, errors, seconds: (now() - startedAt) / 1000 };
    },
  };
}

/**
 * `calls` calls started at a steady `ratePerSec` (open loop, at most `maxInFlight` at once): the load
 * stays below what the process can do, so latency is the servers' and the balancer's, not a queue's.
 */
export async function pacedLoad({ ratePerSec, calls, maxInFlight = 64, call, onReply }) {
  const histogram = newHistogram();
  let issued = 0;
  let completed = 0;
  let failed = 0;
  let skipped = 0;
  let inFlight = 0;
  const startedAt = now();
  const pending = new Set();
  while (issued + skipped < calls) {
    const due = Math.min(calls, Math.floor(((now() - startedAt) * ratePerSec) / 1000) + 1);
    while (issued + skipped < due) {
      if (inFlight >= maxInFlight) {
        skipped += 1;
        continue;
      }
      issued += 1;
      inFlight += 1;
      const t = now();
      const p = call().then(
        (reply) => {
          recordMs(histogram, now() - t);
          completed += 1;
          onReply?.(reply);
        },
        () => { failed += 1; },
      ).finally(() => {
        inFlight -= 1;
        pending.delete(p);
      });
      pending.add(p);
    }
    await sleep(1);
  }
  await Promise.all(pending);
  return { histogram, completed, failed, skipped, elapsedMs: now() - startedAt };
}
