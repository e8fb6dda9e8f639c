// In-process greeter servers (real @grpc/grpc-js on 127.0.0.1:0) and an in-memory instance list, for
// balancing tests that feed ClientFactory without etcd. Each server replies with its own port in
// `address`, after a configurable delay or with a configurable error code, and counts what it received.
import { Metadata, Server, ServerCredentials, status as Status, type CallOptions, type ServiceError, type handleUnaryCall } from '@grpc/grpc-js';
import { BehaviorSubject, firstValueFrom, map, type Observable } from 'rxjs';
import { afterEach } from 'vitest';
import { ClientFactory } from '../../libs/etcd-discovery/src/client/client-factory.js';
import type { DiscoveredClientOptions } from '../../libs/etcd-discovery/src/client/discovered-client-options.interface.js';
import type { InstanceSource } from '../../libs/etcd-discovery/src/discovery/instance-source.js';
import type { DiscoveryState } from '../../libs/etcd-discovery/src/discovery/discovery-state.js';
import type { ServiceInstance } from '../../libs/etcd-discovery/src/discovery/service-instance.js';
import { GREETER_PROTO_PATH, loadGreeter, type HelloReply } from './greeter-proto.js';
import { waitFor } from './wait.js';

export { GREETER_PROTO_PATH };
export const SERVICE = 'greeter';

const GreeterService = loadGreeter().service;

interface HelloRequest {
  name: string;
  delayMs?: number;
}

/** The typed service a discovered `ClientGrpc` hands out for `Greeter`. */
export interface GreeterClient {
  sayHello(request: HelloRequest, metadata?: Metadata, options?: CallOptions): Observable<HelloReply>;
}

export interface Behaviour {
  /** Milliseconds before answering. */
  delayMs: number;
  /** Answer with this status instead of a reply. */
  code?: Status;
  /** The status's details with `code` (default: `port <port> answers <code>`). */
  details?: string;
  /** Send response headers before the `code` status (else the error is a Trailers-Only response). */
  headersFirst?: boolean;
  /** Hold every call without answering (until `release()`), e.g. to force-shut a server with no reply half-written. */
  hold?: boolean;
}

/** One real grpc-js server; `behaviour` can be changed while it runs. */
export class GreeterServer {
  /** performance.now() of every call received. */
  readonly received: number[] = [];
  /** Calls whose answer (reply or error) was handed to grpc-js. */
  answered = 0;
  stopped = false;
  private held: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
    public behaviour: Behaviour,
  ) {}

  static async start(behaviour: Partial<Behaviour> = {}): Promise<GreeterServer> {
    const server = new Server();
    const ref: { self?: GreeterServer } = {};
    const sayHello: handleUnaryCall<HelloRequest, HelloReply> = (call, callback) => {
      const self = ref.self!;
      self.received.push(performance.now());
      const { delayMs, code, details, headersFirst, hold } = self.behaviour;
      const answer = (): void => {
        self.answered += 1;
        if (code !== undefined && headersFirst) call.sendMetadata(new Metadata());
        if (code !== undefined) callback({ code, details: details ?? `port ${self.port} answers ${Status[code]}` } as ServiceError);
        else callback(null, { message: `hello ${call.request.name}`, instanceId: String(self.port), address: String(self.port) });
      };
      if (hold) self.held.push(answer);
      else if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    };
    server.addService(GreeterService, { SayHello: sayHello, StreamHellos: (call: { end(): void }) => call.end() });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    ref.self = new GreeterServer(server, port, { delayMs: 0, ...behaviour });
    return ref.self;
  }

  get calls(): number {
    return this.received.length;
  }

  /** Calls received in [from, to) (performance.now() times). */
  receivedBetween(from: number, to: number): number {
    return this.received.filter((at) => at >= from && at < to).length;
  }

  /** Calls received and not answered yet. */
  get pending(): number {
    return this.received.length - this.answered;
  }

  /** Answers the held calls and stops holding. */
  release(): void {
    this.behaviour = { ...this.behaviour, hold: false };
    for (const answer of this.held.splice(0)) answer();
  }

  forceShutdown(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.held = [];
    this.server.forceShutdown();
  }
}

/** The record a registry would hold for this server. */
export function instanceOf(server: GreeterServer, metadata: Record<string, unknown> = {}): ServiceInstance {
  return {
    id: `i${server.port}`,
    key: `/services/${SERVICE}/i${server.port}`,
    address: `127.0.0.1:${server.port}`,
    host: '127.0.0.1',
    port: server.port,
    metadata,
  };
}

/** An InstanceSource whose list the test sets by hand: etcd is not what these tests are about. */
export class MemoryInstanceSource implements InstanceSource {
  readonly list = new BehaviorSubject<readonly ServiceInstance[]>([]);

  set(instances: readonly ServiceInstance[]): void {
    this.list.next(instances);
  }

  watch(_serviceName: string): Observable<readonly ServiceInstance[]> {
    return this.list;
  }

  states(_serviceName: string): Observable<DiscoveryState> {
    return this.list.pipe(map((instances) => ({ kind: 'listed' as const, instances })));
  }

  prefixOf(serviceName: string): string {
    return `/services/${serviceName}/`;
  }
}

export type CallOutcome =
  | { readonly ok: true; readonly port: number; readonly at: number; readonly ms: number }
  | { readonly ok: false; readonly code: Status; readonly details: string; readonly at: number; readonly ms: number };

/** One SayHello, with `entries` as call metadata (routing headers, hash keys); never throws. `at` is performance.now() when it ended. */
export async function callOnce(client: GreeterClient, deadlineMs = 5_000, entries: Readonly<Record<string, string>> = {}): Promise<CallOutcome> {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(entries)) metadata.set(key, value);
  const startedAt = performance.now();
  try {
    const reply = await firstValueFrom(client.sayHello({ name: 'test' }, metadata, { deadline: Date.now() + deadlineMs }));
    const at = performance.now();
    return { ok: true, port: Number(reply.address), at, ms: at - startedAt };
  } catch (error) {
    const at = performance.now();
    const { code, details } = error as ServiceError;
    return { ok: false, code, details: details ?? String(error), at, ms: at - startedAt };
  }
}

/** Calls until one succeeds: the channel has a READY subchannel. */
export async function firstReply(client: GreeterClient): Promise<void> {
  await waitFor(async () => (await callOnce(client)).ok, 5_000, { what: 'a first reply' });
}

/** Calls until every server has answered once: all subchannels are READY before measuring. */
export async function warmUp(client: GreeterClient, servers: readonly GreeterServer[]): Promise<void> {
  const seen = new Set<number>();
  await waitFor(
    async () => {
      const outcome = await callOnce(client);
      if (outcome.ok) seen.add(outcome.port);
      return servers.every((server) => seen.has(server.port));
    },
    5_000,
    { intervalMs: 1, what: 'a reply from every server' },
  );
}

/** One SayHello with call metadata; never throws. */
export function callWithMetadata(client: GreeterClient, entries: Readonly<Record<string, string>>, deadlineMs = 5_000): Promise<CallOutcome> {
  return callOnce(client, deadlineMs, entries);
}

/**
 * `concurrency` callers, each starting its next call when the last one ends, until `stop()`; every outcome kept.
 * `call` makes one call (default: a plain SayHello), e.g. one carrying a key and returning it with the outcome.
 */
export function backgroundLoad<T = CallOutcome>(
  client: GreeterClient,
  concurrency: number,
  call: () => Promise<T> = () => callOnce(client) as Promise<T>,
): { readonly outcomes: T[]; stop(): Promise<T[]> } {
  const outcomes: T[] = [];
  let running = true;
  const workers = Array.from({ length: concurrency }, async () => {
    while (running) outcomes.push(await call());
  });
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(workers);
      return outcomes;
    },
  };
}

export interface LoadResult {
  readonly outcomes: CallOutcome[];
  /** Successful calls by serving port. */
  readonly byPort: Map<number, number>;
  /** Failed calls by status name. */
  readonly failures: Record<string, number>;
  readonly failed: number;
}

export interface LoadOptions {
  readonly concurrency: number;
  /** Stop after this many calls in all... */
  readonly calls?: number;
  /** ...or after this long. */
  readonly durationMs?: number;
  readonly deadlineMs?: number;
}

/** Closed-loop load: `concurrency` callers, each starting its next call when the last one ends. */
export async function runLoad(client: GreeterClient, options: LoadOptions): Promise<LoadResult> {
  const outcomes: CallOutcome[] = [];
  const stopAt = options.durationMs === undefined ? Infinity : performance.now() + options.durationMs;
  const limit = options.calls ?? Infinity;
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < limit && performance.now() < stopAt) {
      started += 1;
      outcomes.push(await callOnce(client, options.deadlineMs));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return summarize(outcomes);
}

export function summarize(outcomes: CallOutcome[]): LoadResult {
  const byPort = new Map<number, number>();
  const failures: Record<string, number> = {};
  let failed = 0;
  for (const outcome of outcomes) {
    if (outcome.ok) {
      byPort.set(outcome.port, (byPort.get(outcome.port) ?? 0) + 1);
    } else {
      failed += 1;
      const name = Status[outcome.code] ?? String(outcome.code);
      failures[name] = (failures[name] ?? 0) + 1;
    }
  }
  return { outcomes, byPort, failures, failed };
}

/** Share of successful calls served by `port`, in percent of all calls. */
export function sharePercent(result: LoadResult, port: number): number {
  return ((result.byPort.get(port) ?? 0) * 100) / result.outcomes.length;
}

/**
 * Servers, factories and clients of one test, all closed after it whatever happened: call inside a
 * describe/file to register the afterEach.
 */
export function balancingFixture(): {
  readonly source: () => MemoryInstanceSource;
  startServers(count: number, behaviour?: Partial<Behaviour>): Promise<GreeterServer[]>;
  client(options?: Partial<DiscoveredClientOptions>): GreeterClient;
  factory(): ClientFactory;
} {
  let source = new MemoryInstanceSource();
  let factory: ClientFactory | undefined;
  const servers: GreeterServer[] = [];
  afterEach(() => {
    factory?.close();
    factory = undefined;
    for (const server of servers.splice(0)) server.forceShutdown();
    source.list.complete();
    source = new MemoryInstanceSource();
  });
  const getFactory = (): ClientFactory => (factory ??= new ClientFactory(source, 1_000));
  return {
    source: () => source,
    async startServers(count, behaviour) {
      const started = await Promise.all(Array.from({ length: count }, () => GreeterServer.start(behaviour)));
      servers.push(...started);
      return started;
    },
    client(options = {}) {
      return getFactory()
        .createClient(SERVICE, { package: 'greeter', protoPath: GREETER_PROTO_PATH, ...options })
        .getService<GreeterClient>('Greeter');
    },
    factory: getFactory,
  };
}
