// The registry as seen from outside, sampled every few tens of milliseconds through etcd's HTTP gateway, and
// pure analysis of those samples: was a key there, on which lease, since when, and was it ever recreated.
import type { EtcdView, ViewKv } from './etcd-view.js';

export interface Sample {
  /** Date.now() when the answer arrived. */
  at: number;
  /** undefined when etcd did not answer (outage, election, cut test process). */
  kvs?: ReadonlyMap<string, ViewKv>;
}

export class RegistrySampler {
  readonly samples: Sample[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly view: EtcdView,
    private readonly prefix: string,
    private readonly intervalMs = 50,
  ) {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** The last answered sample's keys. */
  latest(): ReadonlyMap<string, ViewKv> | undefined {
    for (let index = this.samples.length - 1; index >= 0; index--) if (this.samples[index].kvs) return this.samples[index].kvs;
    return undefined;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const started = Date.now();
      try {
        const { kvs } = await this.view.range(this.prefix, 1_000);
        this.samples.push({ at: Date.now(), kvs: new Map(kvs.map((kv) => [kv.key, kv])) });
      } catch {
        this.samples.push({ at: Date.now() });
      }
      const wait = this.intervalMs - (Date.now() - started);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

export interface KeyRecovery {
  key: string;
  /** Present in the last answered sample. */
  presentAtEnd: boolean;
  /** Lease at the end. */
  finalLease?: string;
  /**
   * When the key's final, unbroken stretch began: present in every answered sample since, on the same lease
   * and never recreated (same create revision). undefined if absent at the end.
   */
  stableSince?: number;
  /** Answered samples in [from, to] in which the key was absent. */
  absentSamples: number;
  /** First / last answered sample in [from, to] without the key. */
  firstAbsentAt?: number;
  lastAbsentAt?: number;
  /** Times the key was recreated (create revision changed) or moved to another lease within [from, to]. */
  recreated: number;
  leaseChanges: number;
}

/** How `key` fared over `samples` within [from, to] (answered samples only). */
export function keyRecovery(samples: readonly Sample[], key: string, from = 0, to = Infinity): KeyRecovery {
  const answered = samples.filter((sample) => sample.kvs !== undefined);
  const result: KeyRecovery = { key, presentAtEnd: false, absentSamples: 0, recreated: 0, leaseChanges: 0 };
  let previous: ViewKv | undefined;
  for (const sample of answered) {
    if (sample.at < from || sample.at > to) {
      previous = sample.kvs!.get(key) ?? previous;
      continue;
    }
    const kv = sample.kvs!.get(key);
    if (!kv) {
      result.absentSamples += 1;
      result.firstAbsentAt ??= sample.at;
      result.lastAbsentAt = sample.at;
    } else if (previous) {
      if (kv.createRevision !== previous.createRevision) result.recreated += 1;
      else if (kv.lease !== previous.lease) result.leaseChanges += 1;
    }
    if (kv) previous = kv;
  }
  const last = answered.at(-1)?.kvs?.get(key);
  if (!last) return result;
  result.presentAtEnd = true;
  result.finalLease = last.lease;
  let since = answered.at(-1)!.at;
  for (let index = answered.length - 1; index >= 0; index--) {
    const kv = answered[index].kvs!.get(key);
    if (!kv || kv.lease !== last.lease || kv.createRevision !== last.createRevision) break;
    since = answered[index].at;
  }
  result.stableSince = since;
  return result;
}

/** When etcd last failed to answer a sample in [from, to], or undefined. */
export function lastUnanswered(samples: readonly Sample[], from: number, to = Infinity): number | undefined {
  let last: number | undefined;
  for (const sample of samples) if (!sample.kvs && sample.at >= from && sample.at <= to) last = sample.at;
  return last;
}

/** How each greeter's key fared since `from`. */
export function fatesOf(samples: readonly Sample[], greeters: readonly { key: string }[], from = 0): KeyRecovery[] {
  return greeters.map((greeter) => keyRecovery(samples, greeter.key, from));
}

/** The key stayed registered: present at the end, never absent in the window (and, `strict`, never recreated). */
export function stayed(fate: KeyRecovery, strict = false): boolean {
  return fate.presentAtEnd && fate.absentSamples === 0 && (!strict || fate.recreated === 0);
}
