// Polling helpers: tests wait for a condition with a deadline instead of sleeping a fixed time.

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface WaitOptions {
  /** Poll period; default 20 ms. */
  readonly intervalMs?: number;
  /** What was awaited, for the timeout message. */
  readonly what?: string;
}

/**
 * Polls `probe` until it returns a truthy value and returns that value. A probe that throws counts
 * as "not yet". Fails after `timeoutMs` with the last value or error seen.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  timeoutMs: number,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value as NonNullable<T>;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      const seen = last instanceof Error ? `${last.name}: ${last.message}` : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what ?? 'condition'} (last: ${seen})`);
    }
    await sleep(options.intervalMs ?? 20);
  }
}

/** Polls `probe` for `durationMs` and fails at the first falsy answer (or throw): "stays true". */
export async function holdsFor(
  probe: () => unknown,
  durationMs: number,
  options: WaitOptions = {},
): Promise<void> {
  const deadline = Date.now() + durationMs;
  const startedAt = Date.now();
  while (Date.now() < deadline) {
    let value: unknown;
    try {
      value = await probe();
    } catch (error) {
      throw new Error(`${options.what ?? 'condition'} failed after ${Date.now() - startedAt} ms: ${String(error)}`);
    }
    if (!value) throw new Error(`${options.what ?? 'condition'} stopped holding after ${Date.now() - startedAt} ms`);
    await sleep(options.intervalMs ?? 50);
  }
}

/** Milliseconds `action` took, with its result. */
export async function timed<T>(action: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const startedAt = performance.now();
  const value = await action();
  return { value, ms: performance.now() - startedAt };
}
