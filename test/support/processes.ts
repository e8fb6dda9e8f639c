// Child processes for the end-to-end tests: greeters (standalone or hybrid), the gateway and the load client,
// each with its output captured, each tracked so that it is killed by PID when the test (or file) ends,
// whatever happened. Plus small etcd helpers that read the registry from outside (HTTP gateway, no client).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeEach } from 'vitest';
import { GREETER_PROTO_PATH } from './greeter-proto.js';
import { waitFor } from './wait.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const GREETER_MAIN = `${ROOT}apps/greeter/dist/main.js`;
export const GATEWAY_MAIN = `${ROOT}apps/gateway/dist/main.js`;
export const LOAD_CLIENT = `${ROOT}test/fixtures/load-client.mjs`;

/** Wall-clock milliseconds with sub-millisecond precision; the load client records the same clock. */
export const epochNow = (): number => performance.timeOrigin + performance.now();

const STOP_GRACE_MS = 15_000;
const CLEANUP_GRACE_MS = 5_000;
const OUTPUT_LIMIT = 256 * 1024;

/** A namespace no other test uses, so leftovers (expiring leases) never leak between tests. */
export function uniqueNamespace(label: string): string {
  return `/e2e-${label}-${randomBytes(3).toString('hex')}`;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** epochNow() when the 'exit' event arrived. */
  at: number;
}

/** One child process: its output, its exit, and ways to end it. */
export class ManagedProcess {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  exitInfo?: ExitInfo;
  private text = '';
  private readonly outputListeners = new Set<() => void>();

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    if (child.pid === undefined) throw new Error(`${name}: spawn failed (no pid)`);
    this.pid = child.pid;
    const append = (chunk: Buffer) => {
      this.text += chunk.toString('utf8');
      if (this.text.length > OUTPUT_LIMIT) this.text = this.text.slice(-OUTPUT_LIMIT);
      for (const listener of this.outputListeners) listener();
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal, at: epochNow() };
        for (const listener of this.outputListeners) listener();
        resolve(this.exitInfo);
      });
    });
    child.once('error', (error) => (this.text += `\n[spawn error] ${error.message}\n`));
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  output(): string {
    return this.text;
  }

  /** Resolves with the first match of `pattern` in the output; rejects on exit or timeout. */
  waitForOutput(pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = this.text.match(pattern);
        if (match) finish(() => resolve(match));
        else if (!this.alive) finish(() => reject(this.failure(`exited (${describeExit(this.exitInfo)}) before printing ${pattern}`)));
      };
      const timer = setTimeout(() => finish(() => reject(this.failure(`did not print ${pattern} within ${timeoutMs} ms`))), timeoutMs);
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.outputListeners.delete(check);
        settle();
      };
      this.outputListeners.add(check);
      check();
    });
  }

  /** Sends `signal` by PID (no-op once exited). */
  signal(signal: NodeJS.Signals): void {
    if (!this.alive) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // already gone
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it exited and whether it had to be killed. */
  async stop(graceMs = STOP_GRACE_MS): Promise<ExitInfo & { forced: boolean }> {
    this.signal('SIGTERM');
    return this.awaitExit(graceMs);
  }

  /** `kill -9`; resolves once the exit is observed. */
  async kill9(): Promise<ExitInfo> {
    this.signal('SIGKILL');
    return this.exited;
  }

  /** Waits for the exit; SIGKILL if it takes longer than `graceMs`. */
  async awaitExit(graceMs: number): Promise<ExitInfo & { forced: boolean }> {
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      this.signal('SIGKILL');
    }, graceMs);
    const info = await this.exited;
    clearTimeout(timer);
    return { ...info, forced };
  }

  failure(message: string): Error {
    return new Error(`${this.name} (pid ${this.pid}) ${message}\n--- output of ${this.name} ---\n${this.text.slice(-8_000)}`);
  }
}

export function describeExit(info: ExitInfo | undefined): string {
  if (!info) return 'running';
  return info.signal ? `signal ${info.signal}` : `code ${info.code}`;
}

/**
 * Every process a test file starts. Processes started inside a test are ended after that test;
 * those started in beforeAll are ended after the file. On a failed test the output of every process
 * it involved is printed.
 */
export class ProcessTracker {
  private readonly fileScoped: ManagedProcess[] = [];
  private testScoped: ManagedProcess[] = [];
  private inTest = false;

  track(proc: ManagedProcess): ManagedProcess {
    everyChild.add(proc);
    (this.inTest ? this.testScoped : this.fileScoped).push(proc);
    return proc;
  }

  spawnNode(name: string, script: string, env: NodeJS.ProcessEnv, args: string[] = []): ManagedProcess {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: ROOT,
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return this.track(new ManagedProcess(name, child));
  }

  forkNode(name: string, script: string, env: NodeJS.ProcessEnv): ManagedProcess {
    const child = fork(script, [], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    return this.track(new ManagedProcess(name, child));
  }

  /** The file-level processes plus the current test's. */
  involvedInCurrentTest(): ManagedProcess[] {
    return [...this.fileScoped, ...this.testScoped];
  }

  printOutputs(title: string, procs: Iterable<ManagedProcess>): void {
    for (const proc of procs) {
      console.log(`--- ${title}: output of ${proc.name} (pid ${proc.pid}, ${describeExit(proc.exitInfo)}) ---\n${proc.output()}`);
    }
  }

  beginTest(): void {
    this.inTest = true;
    this.testScoped = [];
  }

  async endTest(): Promise<void> {
    this.inTest = false;
    await killAll(this.testScoped);
  }

  async endFile(): Promise<void> {
    await killAll([...this.fileScoped, ...this.testScoped]);
  }
}

/** SIGTERM every live process by PID, SIGKILL what is left after the grace time; never throws. */
async function killAll(procs: ManagedProcess[]): Promise<void> {
  await Promise.all(procs.filter((proc) => proc.alive).map((proc) => proc.stop(CLEANUP_GRACE_MS)));
}

// Last line of defence if the worker itself goes down: synchronous, by PID.
const everyChild = new Set<ManagedProcess>();
process.once('exit', () => {
  for (const proc of everyChild) if (proc.alive) proc.signal('SIGKILL');
});

/** Registers the hooks that end and (on failure) print the processes; call once at the top of a spec file. */
export function useProcesses(): ProcessTracker {
  const tracker = new ProcessTracker();
  beforeEach((context) => {
    tracker.beginTest();
    context.onTestFailed(() => tracker.printOutputs(`FAILED "${context.task.name}"`, tracker.involvedInCurrentTest()));
  });
  afterEach(() => tracker.endTest(), 30_000);
  afterAll(() => tracker.endFile(), 30_000);
  return tracker;
}

/** The environment for a child process: ours plus `extra`, without Vitest's variables (NODE_OPTIONS would load its loader into the child). */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extra };
  for (const key of Object.keys(env)) if (key.startsWith('VITEST') || key === 'NODE_OPTIONS') delete env[key];
  return env;
}

// ---------------------------------------------------------------------------------------------------------
// The registry, read from outside through etcd's HTTP gateway.

export interface RegistryEntry {
  key: string;
  value: string;
  lease: string;
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text: string): string => Buffer.from(text, 'base64').toString('utf8');

function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  bytes[bytes.length - 1] += 1;
  return bytes.toString('base64');
}

/** Every key under `prefix`, straight from etcd. */
export async function listPrefix(endpoint: string, prefix: string): Promise<RegistryEntry[]> {
  const response = await fetch(`${endpoint}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: b64(prefix), range_end: prefixEnd(prefix) }),
    signal: AbortSignal.timeout(2_000),
  });
  if (!response.ok) throw new Error(`etcd range ${prefix}: HTTP ${response.status} ${await response.text()}`);
  const body = (await response.json()) as { kvs?: { key: string; value?: string; lease?: string }[] };
  // The gateway leaves out an empty value (a hostile writer may leave one).
  return (body.kvs ?? []).map((kv) => ({ key: unb64(kv.key), value: unb64(kv.value ?? ''), lease: kv.lease ?? '0' }));
}

// ---------------------------------------------------------------------------------------------------------
// Greeters

export interface GreeterOptions {
  etcd: string;
  namespace: string;
  name?: string;
  /** Hybrid app (HTTP + gRPC) on this HTTP port. */
  httpPort?: number;
  grpcUrl?: string;
  ttlSeconds?: number;
  drainDelayMs?: number;
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the registration. */
  timeoutMs?: number;
}

export interface Greeter {
  proc: ManagedProcess;
  name: string;
  /** The etcd key holding this instance's record. */
  key: string;
  /** `Addr` from the record, e.g. `127.0.0.1:41234`. */
  address: string;
  port: number;
  record: { Addr: string; Metadata: Record<string, unknown> };
  /** Hybrid only: `http://127.0.0.1:<port>`. */
  httpUrl?: string;
}

let greeterCount = 0;

/** Starts `node apps/greeter/dist/main.js` and resolves once its key is in etcd (and, hybrid, GET /registration says so). */
export async function startGreeter(tracker: ProcessTracker, options: GreeterOptions): Promise<Greeter> {
  const name = options.name ?? `greeter-${++greeterCount}`;
  const env: NodeJS.ProcessEnv = {
    ETCD_HOSTS: options.etcd,
    DISCOVERY_NAMESPACE: options.namespace,
    LEASE_TTL_SECONDS: String(options.ttlSeconds ?? 2),
    GRPC_URL: options.grpcUrl ?? '127.0.0.1:0',
    ...(options.drainDelayMs === undefined ? {} : { DRAIN_DELAY_MS: String(options.drainDelayMs) }),
    ...(options.httpPort === undefined ? {} : { HTTP_PORT: String(options.httpPort) }),
    ...options.env,
  };
  const proc = tracker.spawnNode(name, GREETER_MAIN, env);
  const timeoutMs = options.timeoutMs ?? 20_000;
  const prefix = `${options.namespace}/greeter/`;
  const entry = await waitFor(
    async () => {
      if (!proc.alive) throw proc.failure(`exited (${describeExit(proc.exitInfo)}) before registering`);
      const entries = await listPrefix(options.etcd, prefix);
      return entries.find((candidate) => candidate.key.includes(`-${proc.pid}-`));
    },
    timeoutMs,
    { intervalMs: 25, what: `${name} (pid ${proc.pid}) to register under ${prefix}` },
  ).catch((error: unknown) => {
    throw error instanceof Error && error.message.includes('--- output') ? error : proc.failure(String(error));
  });
  const record = JSON.parse(entry.value) as Greeter['record'];
  const port = Number(record.Addr.slice(record.Addr.lastIndexOf(':') + 1));
  const greeter: Greeter = { proc, name, key: entry.key, address: record.Addr, port, record };
  if (options.httpPort !== undefined) {
    greeter.httpUrl = `http://127.0.0.1:${options.httpPort}`;
    await waitFor(async () => (await getJson<{ registered: boolean }>(`${greeter.httpUrl}/registration`)).registered, timeoutMs, {
      intervalMs: 25,
      what: `${name} GET /registration to report registered`,
    });
  }
  return greeter;
}

export function startGreeters(tracker: ProcessTracker, count: number, options: GreeterOptions): Promise<Greeter[]> {
  return Promise.all(Array.from({ length: count }, () => startGreeter(tracker, options)));
}

export async function getJson<T>(url: string, timeoutMs = 5_000): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

// ---------------------------------------------------------------------------------------------------------
// Gateway

export interface Gateway {
  proc: ManagedProcess;
  url: string;
}

export async function startGateway(tracker: ProcessTracker, options: { etcd: string; namespace: string; port: number }): Promise<Gateway> {
  const proc = tracker.spawnNode('gateway', GATEWAY_MAIN, {
    ETCD_HOSTS: options.etcd,
    DISCOVERY_NAMESPACE: options.namespace,
    PORT: String(options.port),
  });
  const match = await proc.waitForOutput(/gateway listening on (http:\/\/\S+)/, 20_000);
  return { proc, url: match[1].replace('[::1]', '127.0.0.1').replace(/\/$/, '') };
}

// ---------------------------------------------------------------------------------------------------------
// Load client (test/fixtures/load-client.mjs over IPC)

/** One call as the load client recorded it: start / end (epoch ms), serving address or error. */
export interface CallRecord {
  s: number;
  t: number;
  a?: string;
  e?: string;
  c?: number;
  /** The peer grpc-js sent the call to (its connection's address), as a client interceptor read it at the end. */
  p?: string;
}

export interface CallSummary {
  calls: number;
  failed: number;
  byAddress: Record<string, number>;
  errors: string[];
}

export interface LoadResult extends CallSummary {
  started: number;
  stopped: number;
  records: CallRecord[];
}

export interface LoadOptions {
  ratePerSec: number;
  concurrency?: number;
  /** Upper bound; stopLoad() usually ends it first. */
  durationMs?: number;
  maxCalls?: number;
  /** Server-side handler delay per call. */
  delayMs?: number;
}

export interface ClientInstance {
  key: string;
  id: string;
  address: string;
}

export interface ClientStartup {
  processStartedAt: number;
  appStartedAt: number;
  readyAt: number;
  /** When the Greeter instance list first arrived, and its length then. */
  firstListAt?: number;
  firstListCount?: number;
}

/** One service followed by the load client: its current keys and when its instance list emitted. */
export interface FollowedService {
  keys: string[];
  emissions: number;
  /** epochNow() of the first / last emission. */
  firstAt?: number;
  lastAt?: number;
  error?: string;
}

export interface MemorySample {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export class LoadClient {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (value: Record<string, unknown>) => void; reject: (error: Error) => void }>();

  constructor(readonly proc: ManagedProcess) {
    proc.child.on('message', (message: Record<string, unknown>) => {
      const waiter = typeof message.id === 'number' ? this.pending.get(message.id) : undefined;
      if (!waiter) return;
      this.pending.delete(message.id as number);
      if (message.ok) waiter.resolve(message);
      else waiter.reject(proc.failure(`command failed: ${String(message.error)}`));
    });
    void proc.exited.then(() => {
      for (const waiter of this.pending.values()) waiter.reject(proc.failure('exited with a command pending'));
      this.pending.clear();
    });
  }

  request<T>(command: Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(this.proc.failure(`did not answer ${JSON.stringify(command)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.proc.child.send({ ...command, id });
    });
  }

  burst(n: number, concurrency = 16, delayMs?: number): Promise<CallSummary> {
    return this.request({ cmd: 'burst', n, concurrency, delayMs });
  }

  startLoad(options: LoadOptions): Promise<{ started: number }> {
    return this.request({ cmd: 'load', ...options });
  }

  stopLoad(): Promise<LoadResult> {
    return this.request({ cmd: 'stopLoad' });
  }

  /** The client's current instance list, as the library publishes it to its resolver. */
  async instances(): Promise<ClientInstance[]> {
    return (await this.request<{ instances: ClientInstance[] }>({ cmd: 'instances' }, 5_000)).instances;
  }

  /** Startup milestones: process start, Nest app creation, ready, first Greeter list (epoch ms). */
  startup(): Promise<ClientStartup> {
    return this.request({ cmd: 'startup' }, 5_000);
  }

  /** The length of the client's current instance list (cheap with thousands of instances). */
  async instanceCount(): Promise<number> {
    return (await this.request<{ count: number }>({ cmd: 'instanceCount' }, 5_000)).count;
  }

  /** Subscribes the instance list of each service (ClientFactory.instances); see followed(). */
  follow(services: readonly string[]): Promise<{ following: number }> {
    return this.request({ cmd: 'follow', services }, 10_000);
  }

  /** What each followed service's instance list holds now, and when it emitted. */
  async followed(): Promise<Record<string, FollowedService>> {
    return (await this.request<{ services: Record<string, FollowedService> }>({ cmd: 'followed' }, 10_000)).services;
  }

  /** The client process's memory after a full GC. */
  memory(): Promise<MemorySample> {
    return this.request({ cmd: 'memory' }, 10_000);
  }

  /** `stop` command, then wait for the exit (SIGTERM / SIGKILL fallback). */
  async stop(): Promise<ExitInfo & { forced: boolean }> {
    if (this.proc.alive && this.proc.child.connected) await this.request({ cmd: 'stop' }, 5_000).catch(() => undefined);
    return this.proc.awaitExit(8_000);
  }
}

/**
 * Forks the load client and resolves once its Greeter client has a live instance. `env` adds variables
 * (ETCD_USERNAME / ETCD_PASSWORD, LOAD_CLIENT_RETRY_ATTEMPTS, LOAD_CLIENT_LOG_LEVELS, DISCOVERY_TIMEOUT_MS,
 * LOAD_CLIENT_POLICY, LOAD_CLIENT_SELECT_METADATA, LOAD_CLIENT_MODE=create).
 */
export async function startLoadClient(
  tracker: ProcessTracker,
  options: { etcd: string; namespace: string; name?: string; env?: NodeJS.ProcessEnv },
): Promise<LoadClient> {
  const proc = forkLoadClient(tracker, options.name ?? 'load-client', {
    ETCD_HOSTS: options.etcd,
    DISCOVERY_NAMESPACE: options.namespace,
    ...options.env,
  });
  await whenClientReady(proc, 20_000, (fatal) => proc.failure(`failed to start: ${fatal}`));
  return new LoadClient(proc);
}

/** Forks the load client with `env` (ETCD_HOSTS, DISCOVERY_NAMESPACE, ...); see startLoadClient / whenClientReady. */
export function forkLoadClient(tracker: ProcessTracker, name: string, env: NodeJS.ProcessEnv): ManagedProcess {
  return tracker.forkNode(name, LOAD_CLIENT, { GREETER_PROTO: GREETER_PROTO_PATH, ...env });
}

/**
 * Resolves once the forked load client reports ready; rejects with `onFatal(message)` if it reports a fatal
 * start-up error, or with its output if it exits first or stays silent for `timeoutMs`.
 */
export function whenClientReady(proc: ManagedProcess, timeoutMs: number, onFatal: (fatal: string) => Error): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(proc.failure(`was not ready within ${timeoutMs} ms`)), timeoutMs);
    proc.child.on('message', (message: Record<string, unknown>) => {
      if (message.ready) {
        clearTimeout(timer);
        resolve();
      } else if (message.fatal) {
        clearTimeout(timer);
        reject(onFatal(String(message.fatal)));
      }
    });
    void proc.exited.then((info) => {
      clearTimeout(timer);
      reject(proc.failure(`exited (${describeExit(info)}) before it was ready`));
    });
  });
}
