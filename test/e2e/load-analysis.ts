// Pure helpers over the load client's call records.
import type { CallRecord } from '../support/processes.js';

/** Fraction of `total` per address, for every address in `addresses` (0 when it served nothing). */
export function sharesOf(byAddress: Record<string, number>, addresses: readonly string[], total: number): Record<string, number> {
  return Object.fromEntries(addresses.map((address) => [address, total > 0 ? (byAddress[address] ?? 0) / total : 0]));
}

export function formatShares(shares: Record<string, number>): string {
  return Object.entries(shares)
    .map(([address, share]) => `${address}=${(share * 100).toFixed(1)}%`)
    .join(' ');
}

export const served = (records: readonly CallRecord[], address: string): CallRecord[] => records.filter((record) => record.a === address);
export const failures = (records: readonly CallRecord[]): CallRecord[] => records.filter((record) => record.a === undefined);

/** End time of the first / last call `address` served; undefined if it served none. */
export function firstServed(records: readonly CallRecord[], address: string): number | undefined {
  const times = served(records, address).map((record) => record.t);
  return times.length > 0 ? Math.min(...times) : undefined;
}

export function lastServed(records: readonly CallRecord[], address: string): number | undefined {
  const times = served(records, address).map((record) => record.t);
  return times.length > 0 ? Math.max(...times) : undefined;
}

/** Calls per address in the window [from, to) of end times. */
export function countsBetween(records: readonly CallRecord[], from: number, to: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const record of records) {
    if (record.t < from || record.t >= to) continue;
    const label = record.a ?? 'FAILED';
    counts[label] = (counts[label] ?? 0) + 1;
  }
  return counts;
}

export const ms = (value: number): string => `${value.toFixed(1)} ms`;
