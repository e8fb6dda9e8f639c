// Support for integration tests against real etcd processes (never a mock).
import { randomBytes } from 'node:crypto';
import { Logger, type LoggerService } from '@nestjs/common';
import { Etcd3 } from 'etcd3';
import { compact, startEtcd, type LocalEtcd } from '../../scripts/local-etcd.mjs';
import type { EtcdDiscoveryModuleOptions } from '../../libs/etcd-discovery/src/options/etcd-discovery-options.interface.js';
import type { ResolvedDiscoveryOptions } from '../../libs/etcd-discovery/src/options/resolved-options.js';
import { validateOptions } from '../../libs/etcd-discovery/src/options/validate-options.js';

export { compact, startEtcd, type LocalEtcd };

/** A namespace no other test uses, e.g. `/it/registrar-3fa2c1`. */
export function uniqueNamespace(label: string): string {
  return `/it/${label}-${randomBytes(3).toString('hex')}`;
}

/** The library's resolved options for `endpoint` and `namespace`, through its own validation. */
export function discoveryOptions(
  endpoint: string,
  namespace: string,
  extra: Omit<EtcdDiscoveryModuleOptions, 'namespace'> = {},
): ResolvedDiscoveryOptions {
  return validateOptions({
    ...extra,
    namespace,
    etcd: { hosts: [endpoint], requestTimeoutMs: 2_000, ...extra.etcd },
    server: { ttlSeconds: 2, drainDelayMs: 0, ...extra.server },
  });
}

/** The "outside actor": a plain etcd3 client, no library fault handling, that inspects and mutates etcd. */
export function outsiderClient(endpoint: string): Etcd3 {
  return new Etcd3({ hosts: [endpoint] });
}

/** A record in etcd's naming format, as a Go endpoints manager or our registrar writes it. */
export function record(address: string, metadata: Record<string, unknown> = {}): string {
  return JSON.stringify({ Addr: address, Metadata: metadata });
}

export interface KeyState {
  readonly value: string;
  readonly lease: string;
}

export async function readKey(client: Etcd3, key: string): Promise<KeyState | undefined> {
  const response = await client.get(key).exec();
  const kv = response.kvs[0];
  return kv ? { value: kv.value.toString(), lease: kv.lease } : undefined;
}

export interface LeaseState {
  /** Remaining seconds; -1 once etcd no longer knows the lease (revoked or expired). */
  readonly ttl: number;
  readonly grantedTtl: number;
  readonly keys: string[];
}

export async function leaseState(client: Etcd3, id: string): Promise<LeaseState> {
  const response = await client.leaseClient.leaseTimeToLive({ ID: id, keys: true });
  return {
    ttl: Number(response.TTL),
    grantedTtl: Number(response.grantedTTL),
    keys: (response.keys ?? []).map((key) => Buffer.from(key).toString()),
  };
}

export type LogLevel = 'log' | 'warn' | 'error' | 'debug' | 'verbose' | 'fatal';

export interface LogLine {
  readonly level: LogLevel;
  readonly message: string;
  readonly context?: string;
}

/**
 * A silent Nest logger that records every line, so tests can assert "logged once". Installed with
 * `Logger.overrideLogger`, it receives the lines of every `new Logger(context)` in the process.
 * Set IT_LOG=1 to also print them.
 */
export class RecordingLogger implements LoggerService {
  readonly lines: LogLine[] = [];

  log(message: unknown, ...rest: unknown[]): void {
    this.record('log', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.record('warn', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.record('error', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.record('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.record('verbose', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.record('fatal', message, rest);
  }

  /** Lines whose message contains `pattern` (string) or matches it (RegExp), optionally of one level. */
  matching(pattern: string | RegExp, level?: LogLevel): LogLine[] {
    return this.lines.filter(
      (line) =>
        (level === undefined || line.level === level) &&
        (typeof pattern === 'string' ? line.message.includes(pattern) : pattern.test(line.message)),
    );
  }

  count(pattern: string | RegExp, level?: LogLevel): number {
    return this.matching(pattern, level).length;
  }

  private record(level: LogLevel, message: unknown, rest: unknown[]): void {
    const last = rest.at(-1);
    const line: LogLine = { level, message: String(message), context: typeof last === 'string' ? last : undefined };
    this.lines.push(line);
    if (process.env.IT_LOG) process.stderr.write(`[${Date.now() % 100_000}] ${level} ${line.context ?? ''}: ${line.message.slice(0, 300)}\n`);
  }
}

/** Routes every Nest logger of this test file's process to a new recorder (and silences the console). */
export function recordLogs(): RecordingLogger {
  const recorder = new RecordingLogger();
  Logger.overrideLogger(recorder);
  return recorder;
}

/** Things to close after a test, run last-in first-out; every task runs even if one fails. */
export class Cleanup {
  private readonly tasks: Array<() => unknown> = [];

  add(task: () => unknown): void {
    this.tasks.push(task);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    while (this.tasks.length > 0) {
      const task = this.tasks.pop()!;
      try {
        await task();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `cleanup failed: ${errors.map(String).join('; ')}`);
  }
}
