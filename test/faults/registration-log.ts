// When a greeter says it (re-)registered, from its log file (every line stamped with the scenario's clock by
// Scenario.logged). Used where the test's own view of etcd may be blind for a while (etcd restarted with auth):
// the greeter's word, checked against what the samples show afterwards.
import type { KeyRecovery } from './registry-sampler.js';

export interface LoggedRegistration {
  /** Date.now() of the line. */
  at: number;
  lease: string;
}

const REGISTERED = /^\[\+\s*(\d+) ms\].*\b(?:re-)?registered \S+ as \S+.*\(lease (\d+)\)/;

/** Every "registered ... (lease N)" and "re-registered ... (lease N)" line of a log written since `startedAt`. */
export function loggedRegistrations(log: string, startedAt: number): LoggedRegistration[] {
  return log.split('\n').flatMap((line) => {
    const match = REGISTERED.exec(line);
    return match ? [{ at: startedAt + Number(match[1]), lease: match[2] }] : [];
  });
}

/**
 * When the key was back for good, ms after `from`: the greeter's own line for its final lease if no answered sample
 * after that line missed the key, else the first sample of the final stretch; undefined if absent at the end.
 */
export function registeredAgainMs(fate: KeyRecovery, logged: readonly LoggedRegistration[], from: number): number | undefined {
  if (fate.stableSince === undefined) return undefined;
  const line = logged.filter((entry) => entry.lease === fate.finalLease).at(-1);
  const believable = line !== undefined && (fate.lastAbsentAt === undefined || line.at > fate.lastAbsentAt);
  return Math.max(0, Math.min(fate.stableSince, believable ? line.at : Infinity) - from);
}
