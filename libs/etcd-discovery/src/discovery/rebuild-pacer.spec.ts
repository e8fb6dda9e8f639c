import { describe, expect, it } from 'vitest';
import { RebuildPacer } from './rebuild-pacer.js';

describe('RebuildPacer', () => {
  it('lets a rebuild run at once while nothing is busy', () => {
    expect(new RebuildPacer(() => 0).waitMs()).toBe(0);
  });

  it('after a rebuild of d ms, holds the next for 3 d (rebuilds take at most a quarter of the time)', () => {
    let now = 1_000;
    const pacer = new RebuildPacer(() => now);
    pacer.run(() => {
      now += 10;
    });
    expect(pacer.waitMs()).toBe(30);
    now += 30;
    expect(pacer.waitMs()).toBe(0);
  });

  it('adds up the rebuilds of every service sharing it, and accounts for one that throws', () => {
    let now = 0;
    const pacer = new RebuildPacer(() => now);
    pacer.run(() => (now += 4));
    expect(() =>
      pacer.run(() => {
        now += 4;
        throw new Error('bad list');
      }),
    ).toThrow('bad list');
    // Busy until 0 + 4 x 4 = 16, then the second (started at 4) adds 4 x 4 more: 32; now is 8.
    expect(pacer.waitMs()).toBe(24);
  });
});
