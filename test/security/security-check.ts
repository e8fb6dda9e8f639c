// One security check = one vitest test = one entry of results.json. The body notes what it measured; the entry
// is written whether the test passes or fails, with the failed assertion appended on a failure.
import { it } from 'vitest';
import { recordCheck } from './results.js';

export interface CheckNotes {
  /** Adds one measured fact, in words, to the entry's details. */
  note(fact: string): void;
}

/**
 * Declares the test `name` (also the results.json name). `order` sorts the entries across spec files.
 * Timeout in ms; the default 30 s of the config otherwise.
 */
export function securityCheck(order: number, name: string, body: (notes: CheckNotes) => Promise<void>, timeoutMs?: number): void {
  it(name, async () => {
    const facts: string[] = [];
    const notes: CheckNotes = { note: (fact) => facts.push(fact) };
    try {
      await body(notes);
      recordCheck({ order, name, pass: true, details: joinFacts(facts) });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      recordCheck({ order, name, pass: false, details: joinFacts([...facts, `FAILED: ${oneLine(reason)}`]) });
      throw error;
    }
  }, timeoutMs);
}

function joinFacts(facts: readonly string[]): string {
  return facts.map((fact) => fact.replace(/[.;\s]+$/, '')).join('; ') + (facts.length > 0 ? '.' : '');
}

/** Assertion messages carry diffs over many lines; results.json keeps one line of at most 600 characters. */
function oneLine(text: string): string {
  const flat = text.replace(/\x1b\[[0-9;]*m/g, '').replace(/\s+/g, ' ').trim();
  return flat.length > 600 ? `${flat.slice(0, 597)}...` : flat;
}
