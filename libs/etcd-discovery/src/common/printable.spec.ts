import { describe, expect, it } from 'vitest';
import { printable } from './printable.js';

describe('printable', () => {
  it('keeps plain ASCII as it is', () => {
    expect(printable('/services/greeter/host-1-ab')).toBe('/services/greeter/host-1-ab');
  });

  it('escapes control and non-ASCII characters, so a key cannot forge a log line or a terminal escape', () => {
    expect(printable('a\nWARN forged\u001b[31m\u00e9')).toBe('a\\u000aWARN forged\\u001b[31m\\u00e9');
  });

  it('truncates long text and says how long it was', () => {
    const text = 'x'.repeat(5 * 2 ** 20);
    const shown = printable(text, 50);
    expect(shown).toBe(`${'x'.repeat(50)}...(${text.length} chars)`);
  });

  it('counts the escaped length against the limit', () => {
    const shown = printable('\n'.repeat(100), 12);
    expect(shown.startsWith('\\u000a\\u000a')).toBe(true);
    expect(shown).toContain('...(100 chars)');
  });
});
