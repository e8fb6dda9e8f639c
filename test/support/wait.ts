// Waiting in tests: for a condition with a deadline (Vitest's vi.waitFor underneath) instead of sleeping a fixed
// time, and the two things vi.waitFor does not do: say when a condition came true, and check that one stays true.
import { vi } from 'vitest';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sleeps until the clock `now` (Date.now by default) reads `at`; at once if it is past. */
export async function sleepUntil(at: number, now: () => number = Date.now): Promise<void> {
  const wait = at - now();
  if (wait > 0) await sleep(wait);
}

export interface WaitOptions {
  /** Poll period; default 20 ms. */
  readonly intervalMs?: number;
  /** What was awaited, for the timeout message. */
  readonly what?: string;
}

/** A probe's falsy answer, thrown so that vi.waitFor tries again and reports it if time runs out. */
class NotYet extends Error {
  constructor(readonly value: unknown) {
    super('not yet');
  }
}

/**
 * Polls `probe` until it returns a truthy value and returns that value. A probe that throws counts
 * as "not yet". Fails after `timeoutMs` naming what was awaited and the last value or error seen.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  timeoutMs: number,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  try {
    return await vi.waitFor(
      async () => {
        const value = await probe();
        if (!value) throw new NotYet(value);
        return value as NonNullable<T>;
      },
      { timeout: timeoutMs, interval: options.intervalMs ?? 20 },
    );
  } catch (last) {
    const seen = last instanceof NotYet ? JSON.stringify(last.value) : last instanceof Error ? `${last.name}: ${last.message}` : String(last);
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what ?? 'condition'} (last: ${seen})`);
  }
}

/** Polls `condition` until true; resolves with Date.now() at that moment, or undefined after `timeoutMs`. */
export function timeWhen(condition: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 25): Promise<number | undefined> {
  return waitFor(async () => ((await condition()) ? Date.now() : undefined), timeoutMs, { intervalMs }).catch(() => undefined);
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
