// One fault scenario's world: its own etcd (node or cluster), namespace, proxies and processes, all ended by PID
// when it finishes, whatever happened, and their logs. Scenarios of one file run concurrently (it.concurrent),
// so nothing here is shared between them. scenario-runner.ts runs a scenario and records its result.
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compact, startEtcd, startEtcdCluster, type LocalEtcd, type LocalEtcdCluster } from '../../scripts/local-etcd.mjs';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import {
  GREETER_MAIN,
  LoadClient,
  ProcessTracker,
  ROOT,
  describeExit,
  forkLoadClient,
  uniqueNamespace,
  whenClientReady,
  type LoadOptions,
  type ManagedProcess,
} from '../support/processes.js';
import { sleep, waitFor } from '../support/wait.js';
import { EtcdView } from './etcd-view.js';
import { RegistrySampler } from './registry-sampler.js';

export { compact };

export const TTL_SECONDS = 2;
export const TTL_MS = TTL_SECONDS * 1_000;
/** How soon after a fault heals the scenarios want instances registered and clients current again. */
export const BOUND_MS = 2_000;
/** Steady load used by every scenario unless it says otherwise. */
export const LOAD: LoadOptions = { ratePerSec: 200, concurrency: 32, delayMs: 5, durationMs: 45_000 };

export interface Check {
  what: string;
  ok: boolean;
}

/** What a scenario body reports; `pass` is every check holding. */
export interface Outcome {
  calls: number;
  failed: number;
  allowedFailed: number;
  registrationsLost: number;
  recoveryMs: number | null;
  details: string;
  checks: Check[];
}

export interface ScenarioDefinition {
  /** "<number>. <title>" */
  name: string;
  /** The bound, in words, as the results show it. */
  bound: string;
}

export interface GreeterProcess {
  proc: ManagedProcess;
  name: string;
  key: string;
  address: string;
  port: number;
}

export interface GreeterStart {
  name?: string;
  /** ETCD_HOSTS of the app (direct endpoints or proxies); default the scenario's etcd. */
  etcdHosts?: readonly string[];
  ttlSeconds?: number;
  env?: NodeJS.ProcessEnv;
  /** Wait for the registration (default true). */
  waitRegistered?: boolean;
  timeoutMs?: number;
}

export interface ClientStart {
  name?: string;
  etcdHosts?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

export class Scenario {
  readonly tracker = new ProcessTracker();
  readonly namespace: string;
  readonly prefix: string;
  readonly startedAt = Date.now();
  private readonly cleanups: Array<() => unknown> = [];
  private readonly timeline: string[] = [];
  private greeterCount = 0;
  private readonly kept = new Map<string, unknown>();
  /** Direct endpoints of this scenario's etcd. */
  endpoints: string[] = [];
  auth?: { username: string; password: string };
  private viewInstance?: EtcdView;

  /** Where the timeline and every process's full output go: .tmp/faults/<scenario>/. */
  readonly logDir: string;

  constructor(readonly definition: ScenarioDefinition) {
    const number = /^(\d+[a-z]?)\./.exec(definition.name)?.[1] ?? 'x';
    this.namespace = uniqueNamespace(`fault${number}`);
    this.prefix = `${this.namespace}/greeter/`;
    this.logDir = join(ROOT, '.tmp', 'faults', definition.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60));
    rmSync(this.logDir, { recursive: true, force: true });
    mkdirSync(this.logDir, { recursive: true });
  }

  /**
   * Copies the process's whole output to its log file (ManagedProcess keeps only the last 256 KiB), each line
   * prefixed with when it arrived, in ms since the scenario started (the timeline's clock).
   */
  private logged(proc: ManagedProcess): ManagedProcess {
    const file = createWriteStream(this.logFile(proc));
    const partial = { stdout: '', stderr: '' };
    const write = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const lines = (partial[stream] + chunk.toString('utf8')).split('\n');
      partial[stream] = lines.pop()!;
      const stamp = `[+${String(Date.now() - this.startedAt).padStart(6)} ms] `;
      if (lines.length > 0) file.write(lines.map((line) => `${stamp}${line}\n`).join(''));
    };
    proc.child.stdout?.on('data', write('stdout'));
    proc.child.stderr?.on('data', write('stderr'));
    void proc.exited.then(() =>
      setTimeout(() => {
        for (const rest of Object.values(partial)) if (rest) file.write(`${rest}\n`);
        file.end();
      }, 100),
    );
    return proc;
  }

  logFile(proc: ManagedProcess): string {
    return join(this.logDir, `${proc.name}-${proc.pid}.log`);
  }

  /** The process's whole output so far. */
  fullOutput(proc: ManagedProcess): string {
    return readFileSync(this.logFile(proc), 'utf8');
  }

  /** A line in the scenario's timeline (printed and saved on failure). */
  mark(text: string): number {
    const at = Date.now();
    this.timeline.push(`+${String(at - this.startedAt).padStart(6)} ms  ${text}`);
    return at;
  }

  /** Data saved with the scenario's logs (e.g. call records), for evidence. */
  keep(name: string, value: unknown): void {
    this.kept.set(name, value);
  }

  defer(task: () => unknown): void {
    this.cleanups.push(task);
  }

  /** From now on the test's view and every app started use these etcd credentials. */
  useAuth(auth: { username: string; password: string }): void {
    this.auth = auth;
    this.viewInstance = undefined;
  }

  get view(): EtcdView {
    this.viewInstance ??= new EtcdView(this.endpoints, this.auth);
    return this.viewInstance;
  }

  async etcd(extraArgs: string[] = [], options: { clientPort?: number } = {}): Promise<LocalEtcd> {
    const node = await startEtcd({ extraArgs, clientPort: options.clientPort });
    this.defer(() => node.destroy());
    this.endpoints = [node.endpoint];
    this.viewInstance = undefined;
    return node;
  }

  async cluster(): Promise<LocalEtcdCluster> {
    const cluster = await startEtcdCluster(3);
    this.defer(() => cluster.destroy());
    this.endpoints = [...cluster.endpoints];
    this.viewInstance = undefined;
    return cluster;
  }

  async proxy(target: string | number): Promise<FaultProxy> {
    const proxy = await startFaultProxy(target);
    this.defer(() => proxy.close());
    return proxy;
  }

  sampler(intervalMs = 50): RegistrySampler {
    const sampler = new RegistrySampler(this.view, this.prefix, intervalMs);
    this.defer(() => sampler.stop());
    return sampler;
  }

  async greeter(options: GreeterStart = {}): Promise<GreeterProcess> {
    const name = options.name ?? `greeter-${++this.greeterCount}`;
    const env: NodeJS.ProcessEnv = {
      ETCD_HOSTS: (options.etcdHosts ?? this.endpoints).join(','),
      DISCOVERY_NAMESPACE: this.namespace,
      LEASE_TTL_SECONDS: String(options.ttlSeconds ?? TTL_SECONDS),
      GRPC_URL: '127.0.0.1:0',
      ...(this.auth ? { ETCD_USERNAME: this.auth.username, ETCD_PASSWORD: this.auth.password } : {}),
      ...options.env,
    };
    const proc = this.logged(this.tracker.spawnNode(name, GREETER_MAIN, env));
    this.mark(`${name} started (pid ${proc.pid})`);
    if (options.waitRegistered === false) return { proc, name, key: '', address: '', port: 0 };
    return this.awaitRegistration({ proc, name, key: '', address: '', port: 0 }, options.timeoutMs ?? 20_000);
  }

  /** Resolves once the greeter's key (it contains `-<pid>-`) is in etcd; fills key and address. */
  async awaitRegistration(greeter: GreeterProcess, timeoutMs: number): Promise<GreeterProcess> {
    const found = await waitFor(
      async () => {
        if (!greeter.proc.alive) return 'exited';
        // Keys first: other values under the prefix may be large (scenario 13 keeps 5 MiB there).
        const { kvs } = await this.view.range(this.prefix, 1_000, { keysOnly: true });
        const key = kvs.find((kv) => kv.key.includes(`-${greeter.proc.pid}-`))?.key;
        return key ? (await this.view.range(key)).kvs.find((one) => one.key === key) : undefined;
      },
      timeoutMs,
      { intervalMs: 50 },
    ).catch(() => {
      throw greeter.proc.failure(`did not register under ${this.prefix} within ${timeoutMs} ms`);
    });
    if (found === 'exited') throw greeter.proc.failure(`exited (${describeExit(greeter.proc.exitInfo)}) before registering`);
    const record = JSON.parse(found.value) as { Addr: string };
    greeter.key = found.key;
    greeter.address = record.Addr;
    greeter.port = Number(record.Addr.slice(record.Addr.lastIndexOf(':') + 1));
    this.mark(`${greeter.name} registered as ${greeter.address}`);
    return greeter;
  }

  greeters(count: number, options: GreeterStart = {}): Promise<GreeterProcess[]> {
    return Promise.all(Array.from({ length: count }, () => this.greeter(options)));
  }

  /** Forks the load client; resolves once it has a live greeter (or rejects with its fatal error). */
  async client(options: ClientStart = {}): Promise<LoadClient> {
    const proc = this.forkClient(options);
    await whenClientReady(proc, 25_000, (fatal) => new ClientFatalError(fatal, proc));
    this.mark(`${proc.name} ready (pid ${proc.pid})`);
    return new LoadClient(proc);
  }

  /** Warms `client` up (30 calls: every subchannel connected before the clock starts), starts `load` and gives it `settleMs`. */
  async startLoad(client: LoadClient, load: LoadOptions = LOAD, settleMs = 1_000): Promise<void> {
    await client.burst(30, 6);
    await client.startLoad(load);
    await sleep(settleMs);
  }

  forkClient(options: ClientStart = {}): ManagedProcess {
    return this.logged(forkLoadClient(this.tracker, options.name ?? 'load-client', {
      ETCD_HOSTS: (options.etcdHosts ?? this.endpoints).join(','),
      DISCOVERY_NAMESPACE: this.namespace,
      ...(this.auth ? { ETCD_USERNAME: this.auth.username, ETCD_PASSWORD: this.auth.password } : {}),
      ...options.env,
    }));
  }

  /** Ends every process by PID (SIGKILL: the measurements are done), then proxies and etcd, newest first. */
  async close(): Promise<void> {
    const procs = this.tracker.involvedInCurrentTest();
    for (const proc of procs) proc.signal('SIGCONT');
    await Promise.all(procs.filter((proc) => proc.alive).map((proc) => proc.kill9()));
    while (this.cleanups.length > 0) {
      const task = this.cleanups.pop()!;
      try {
        await task();
      } catch (error) {
        console.error(`[${this.definition.name}] cleanup: ${String(error)}`);
      }
    }
  }

  /** Saves the timeline and kept data beside the processes' logs; returns the directory. */
  saveLogs(): string {
    writeFileSync(join(this.logDir, 'timeline.txt'), `${this.timeline.join('\n')}\n`);
    for (const [name, value] of this.kept) writeFileSync(join(this.logDir, `${name}.json`), JSON.stringify(value));
    return this.logDir;
  }

  timelineText(): string {
    return this.timeline.join('\n');
  }
}

export class ClientFatalError extends Error {
  constructor(
    readonly fatal: string,
    readonly proc: ManagedProcess,
  ) {
    super(`load client failed to start: ${fatal}`);
  }
}
