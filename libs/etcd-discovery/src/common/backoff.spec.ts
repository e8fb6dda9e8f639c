import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Backoff, DEFAULT_BACKOFF, errorMessage, sleep, within } from './backoff.js';

function delays(backoff: Backoff, count: number): number[] {
  return Array.from({ length: count }, () => backoff.next());
}

describe('Backoff', () => {
  it('doubles from initialMs up to maxMs and stays there when random adds no jitter', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1_000, jitter: 0.5 }, () => 0);
    expect(delays(backoff, 7)).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });

  it('takes up to the jitter share off each delay', () => {
    const full = new Backoff({ initialMs: 100, maxMs: 1_000, jitter: 0.5 }, () => 0.999_999);
    expect(delays(full, 5)).toEqual([50, 100, 200, 400, 500]);
    const quarter = new Backoff({ initialMs: 100, maxMs: 1_000, jitter: 0.2 }, () => 0.5);
    expect(delays(quarter, 5)).toEqual([90, 180, 360, 720, 900]);
  });

  it('keeps every delay within [base * (1 - jitter), base] for Math.random', () => {
    const backoff = new Backoff(DEFAULT_BACKOFF);
    for (let i = 0; i < 200; i++) {
      const base = Math.min(DEFAULT_BACKOFF.maxMs, DEFAULT_BACKOFF.initialMs * 2 ** Math.min(i, 30));
      const delay = backoff.next();
      expect(delay).toBeGreaterThanOrEqual(Math.floor(base * (1 - DEFAULT_BACKOFF.jitter)));
      expect(delay).toBeLessThanOrEqual(base);
    }
  });

  it('spreads delays over the jitter range rather than clustering (50 samples of the capped delay)', () => {
    let seed = 7;
    const lcg = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const backoff = new Backoff({ initialMs: 1_000, maxMs: 1_000, jitter: 0.5 }, lcg);
    const samples = delays(backoff, 50);
    expect(Math.min(...samples)).toBeLessThan(600);
    expect(Math.max(...samples)).toBeGreaterThan(900);
  });

  it('with no jitter ignores random entirely', () => {
    const random = vi.fn(() => 0.9);
    expect(delays(new Backoff({ initialMs: 10, maxMs: 40, jitter: 0 }, random), 4)).toEqual([10, 20, 40, 40]);
  });

  it('starts over after reset()', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 10_000, jitter: 0 }, () => 0);
    expect(delays(backoff, 4)).toEqual([100, 200, 400, 800]);
    backoff.reset();
    expect(delays(backoff, 3)).toEqual([100, 200, 400]);
  });

  it('never overflows to Infinity or NaN after many attempts', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 5_000, jitter: 0 }, () => 0);
    const last = delays(backoff, 2_000).at(-1);
    expect(last).toBe(5_000);
  });
});

describe('sleep', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('resolves true once the time has passed, not before', async () => {
    let result: boolean | undefined;
    void sleep(1_000).then((value) => (result = value));
    await vi.advanceTimersByTimeAsync(999);
    expect(result).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toBe(true);
  });

  it('resolves true with a signal that never aborts, and leaves no listener behind', async () => {
    const controller = new AbortController();
    const removed = vi.spyOn(controller.signal, 'removeEventListener');
    const pending = sleep(500, controller.signal);
    await vi.advanceTimersByTimeAsync(500);
    await expect(pending).resolves.toBe(true);
    expect(removed).toHaveBeenCalledWith('abort', expect.any(Function));
  });

  it('resolves false at once when the signal aborts, and clears its timer', async () => {
    const controller = new AbortController();
    let result: boolean | undefined;
    void sleep(60_000, controller.signal).then((value) => (result = value));
    await vi.advanceTimersByTimeAsync(10);
    expect(vi.getTimerCount()).toBe(1);
    controller.abort();
    await Promise.resolve();
    expect(result).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('resolves false immediately for an already-aborted signal without starting a timer', async () => {
    const pending = sleep(60_000, AbortSignal.abort());
    expect(vi.getTimerCount()).toBe(0);
    await expect(pending).resolves.toBe(false);
  });
});

describe('errorMessage', () => {
  it.each([
    [new Error('boom'), 'boom'],
    ['plain', 'plain'],
    [42, '42'],
    [undefined, 'undefined'],
  ])('%s -> %s', (error, expected) => {
    expect(errorMessage(error)).toBe(expected);
  });
});

describe('within', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('returns the work result and leaves no timer behind', async () => {
    vi.useFakeTimers();
    await expect(within(Promise.resolve('done'), 5_000, 'late')).resolves.toBe('done');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('returns the fallback once the time has passed, and clears its timer', async () => {
    vi.useFakeTimers();
    const result = within(new Promise<string>(() => undefined), 1_000, 'late');
    await vi.advanceTimersByTimeAsync(999);
    let settled = false;
    void result.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await expect(result).resolves.toBe('late');
    expect(vi.getTimerCount()).toBe(0);
  });
});
