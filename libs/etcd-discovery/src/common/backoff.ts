export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  /** Random share of each delay, 0..1; spreads the retries of many processes apart. */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 5_000, jitter: 0.5 };

/**
 * For reaching etcd again after an outage: capped at 1 s so recovery lands within about a second of
 * etcd being reachable (the promise is "registered again within 2 s"); one small request per second
 * per process while etcd is down costs etcd little.
 */
export const RECOVERY_BACKOFF: BackoffOptions = { initialMs: 50, maxMs: 1_000, jitter: 0.5 };

/** Exponential delays with full jitter; `reset()` after a success. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const base = Math.min(this.options.maxMs, this.options.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(base * (1 - this.options.jitter * this.random()));
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Resolves after `ms`, or at once (false) when the signal aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `work`'s result, or `fallback` once `ms` pass; the timer is cleared so it never holds the process open. */
export async function within<T>(work: Promise<T>, ms: number, fallback: T): Promise<T> {
  const stop = new AbortController();
  try {
    return await Promise.race([work, sleep(ms, stop.signal).then(() => fallback)]);
  } finally {
    stop.abort();
  }
}

/** The message of anything thrown; never throws itself (a hostile `toString` or getter yields a placeholder). */
export function errorMessage(error: unknown): string {
  try {
    return error instanceof Error ? String(error.message) : String(error);
  } catch {
    return '(unprintable error)';
  }
}
