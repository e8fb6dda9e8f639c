import type { Logger } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import { SkippedKeys } from './skipped-keys.js';

function recorder(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { lines, logger: { warn: (message: string) => lines.push(message) } as unknown as Logger };
}

describe('SkippedKeys', () => {
  it('logs a key once while it stays skipped, escaped', () => {
    const { logger, lines } = recorder();
    const keys = new SkippedKeys('svc', logger);
    for (let i = 0; i < 5; i++) keys.report(new Map([['/s/a\nforged', `bad ${i}`]]));
    expect(lines).toEqual(['svc: skipping "/s/a\\u000aforged": bad 0']);
  });

  it('does not log again when a key flaps between skipped and valid (or deleted) within ten minutes', () => {
    const { logger, lines } = recorder();
    let now = 0;
    const keys = new SkippedKeys('svc', logger, () => now);
    for (let i = 0; i < 300; i++) {
      now += 100;
      keys.report(i % 2 === 0 ? new Map([['/s/flap', 'bad']]) : new Map());
    }
    expect(lines).toHaveLength(1);
    now += 10 * 60_000;
    keys.report(new Map());
    keys.report(new Map([['/s/flap', 'bad again']]));
    expect(lines).toHaveLength(2);
  });

  it('forgets the oldest cleared keys past 10,000, so memory stays bounded', () => {
    const { logger, lines } = recorder();
    let now = 0;
    const keys = new SkippedKeys('svc', logger, () => now);
    for (let i = 0; i < 12_000; i++) {
      keys.report(new Map([[`/s/${i}`, 'bad']]));
      keys.report(new Map());
    }
    expect(lines).toHaveLength(12_000);
    now += 1;
    // The oldest were forgotten: skipped again, they are logged again; the newest are still remembered.
    keys.report(new Map([['/s/0', 'bad'], ['/s/11999', 'bad']]));
    expect(lines.slice(12_000)).toEqual(['svc: skipping "/s/0": bad']);
  });
});
