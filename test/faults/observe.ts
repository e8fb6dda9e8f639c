// Small observation helpers shared by the scenarios: the client's list against etcd's, when a key comes and goes
// (in the client's list, in the sampled registry), and arithmetic over the load client's call records.
import { readFileSync } from 'node:fs';
import { freePort } from '../../scripts/local-etcd.mjs';
import type { CallRecord, LoadClient } from '../support/processes.js';
import { timeWhen } from '../support/wait.js';
import type { RegistrySampler } from './registry-sampler.js';
import type { Scenario } from './scenario.js';

export async function clientKeys(client: LoadClient): Promise<string[]> {
  return (await client.instances()).map((instance) => instance.key).sort();
}

export async function etcdKeys(s: Scenario): Promise<string[]> {
  return (await s.view.range(s.prefix)).kvs.map((kv) => kv.key).sort();
}

/** The client's instance list has exactly etcd's keys (every record under the prefix is a valid one here). */
export async function listsEqual(s: Scenario, client: LoadClient): Promise<boolean> {
  const [mine, theirs] = await Promise.all([clientKeys(client), etcdKeys(s)]);
  return mine.join('\n') === theirs.join('\n');
}

export async function clientHas(client: LoadClient, key: string): Promise<boolean> {
  return (await clientKeys(client)).includes(key);
}

/** When the client first lists `key` (Date.now()), or undefined after `timeoutMs`. */
export function whenListed(client: LoadClient, key: string, timeoutMs: number): Promise<number | undefined> {
  return timeWhen(() => clientHas(client, key), timeoutMs);
}

/** When the client first no longer lists `key`, or undefined after `timeoutMs`. */
export function whenDropped(client: LoadClient, key: string, timeoutMs: number): Promise<number | undefined> {
  return timeWhen(async () => !(await clientHas(client, key)), timeoutMs);
}

/** When the sampled registry first holds `key` (`present`) or first lacks it, or undefined after `timeoutMs`. */
export function whenSampled(sampler: RegistrySampler, key: string, present: boolean, timeoutMs: number): Promise<number | undefined> {
  return timeWhen(() => sampler.latest()?.has(key) === present, timeoutMs);
}

/**
 * The client's watch end to end: writes a record at `${s.prefix}${name}` as soon as etcd takes it (retrying, e.g.
 * during an election) and times when the client lists it.
 */
export async function probeWatch(s: Scenario, client: LoadClient, name: string, timeoutMs = 10_000): Promise<{ key: string; writtenAt: number; seenAt?: number }> {
  const key = `${s.prefix}${name}`;
  const writtenAt = await s.view.putEventually(key, record(`127.0.0.1:${await freePort()}`), timeoutMs);
  return { key, writtenAt, seenAt: await whenListed(client, key, timeoutMs) };
}

/** A record in etcd's naming format. */
export function record(address: string, metadata: Record<string, unknown> = {}): string {
  return JSON.stringify({ Addr: address, Metadata: metadata });
}

export const failed = (records: readonly CallRecord[]): CallRecord[] => records.filter((record) => record.a === undefined);

/** Failed calls that ended in [from, to). */
export function failedBetween(records: readonly CallRecord[], from: number, to: number): number {
  return records.filter((record) => record.a === undefined && record.t >= from && record.t < to).length;
}

/** Calls that started in [from, to). */
export function startedBetween(records: readonly CallRecord[], from: number, to: number): number {
  return records.filter((record) => record.s >= from && record.s < to).length;
}

/** Calls served by `address` that started after `after`. */
export function servedAfter(records: readonly CallRecord[], address: string, after: number): CallRecord[] {
  return records.filter((record) => record.a === address && record.s > after);
}

/** `calls N, failed M (errors)`: how a scenario's details end. */
export function callsSummary(load: { calls: number; failed: number; records: readonly CallRecord[] }): string {
  return `calls ${load.calls}, failed ${load.failed} (${errorSummary(load.records)})`;
}

/** The first few distinct error messages, with counts. */
export function errorSummary(records: readonly CallRecord[]): string {
  const counts = new Map<string, number>();
  for (const record of failed(records)) {
    const text = `${record.c ?? '?'} ${record.e ?? ''}`.slice(0, 120);
    counts.set(text, (counts.get(text) ?? 0) + 1);
  }
  return [...counts].slice(0, 4).map(([text, count]) => `${count}x ${text}`).join(' | ') || 'none';
}

export const ms = (value: number | undefined): string => (value === undefined ? 'never' : `${Math.round(value)} ms`);

/** Lines of a process's output that are warnings (Nest's WARN level) and contain `needle`. */
export function warnLines(output: string, needle: string): string[] {
  return output.split('\n').filter((line) => line.includes('WARN') && line.includes(needle));
}

/** CPU time (user + system) a process has used so far, ms, from /proc (Linux; clock ticks of 10 ms). */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which sits in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/** The q-quantile (0..1) of `values`, nearest rank; undefined when empty. */
export function quantile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
