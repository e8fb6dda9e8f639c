import { afterEach, describe, expect, it, vi } from 'vitest';
import { LogBudget } from './log-budget.js';

describe('LogBudget', () => {
  afterEach(() => vi.useRealTimers());

  it('logs up to the budget, then one summary at the end of the window, then logs again', () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const budget = new LogBudget(3, 10_000, (count) => lines.push(`${count} more`));
    for (let i = 0; i < 10; i++) budget.spend(() => lines.push(`line ${i}`));
    expect(lines).toEqual(['line 0', 'line 1', 'line 2']);
    vi.advanceTimersByTime(10_000);
    expect(lines).toEqual(['line 0', 'line 1', 'line 2', '7 more']);
    budget.spend(() => lines.push('line 10'));
    expect(lines.at(-1)).toBe('line 10');
  });

  it('logs every line of a quiet system and never summarizes nothing', () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const budget = new LogBudget(2, 1_000, (count) => lines.push(`${count} more`));
    for (let i = 0; i < 5; i++) {
      budget.spend(() => lines.push(`line ${i}`));
      vi.advanceTimersByTime(1_000);
    }
    expect(lines).toEqual(['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
  });

  it('flush() reports what is pending at once (on stop)', () => {
    const lines: string[] = [];
    const budget = new LogBudget(1, 60_000, (count) => lines.push(`${count} more`));
    budget.spend(() => lines.push('a'));
    budget.spend(() => lines.push('b'));
    budget.flush();
    expect(lines).toEqual(['a', '1 more']);
  });
});
