import type { Logger } from '@nestjs/common';
import { printable } from '../common/printable.js';

/** How long a key that stopped being skipped is still remembered: a key flapping bad/good logs once. */
const REMEMBER_CLEARED_MS = 10 * 60_000;
/** Cleared keys remembered at most; the oldest are forgotten first. */
const MAX_CLEARED = 10_000;

/**
 * One warning per skipped key: while it stays skipped (whatever garbage is rewritten there), and for
 * ten minutes after it turned valid or went away, so a writer flapping a key between garbage and a
 * record, or putting and deleting it, cannot turn each write into a log line.
 */
export class SkippedKeys {
  /** Both made on the first skipped key: most services never have one, and a client may follow thousands. */
  private current?: Set<string>;
  /** Key -> when it stopped being skipped; insertion order is age order. */
  private cleared?: Map<string, number>;

  constructor(
    private readonly serviceName: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  report(skipped: ReadonlyMap<string, string>): void {
    if (skipped.size === 0 && !this.current?.size && !this.cleared?.size) return;
    this.current ??= new Set();
    this.cleared ??= new Map();
    const now = this.now();
    for (const [key, reason] of skipped) {
      if (this.current.has(key)) continue;
      this.current.add(key);
      const clearedAt = this.cleared.get(key);
      this.cleared.delete(key);
      if (clearedAt !== undefined && now - clearedAt < REMEMBER_CLEARED_MS) continue;
      this.logger.warn(`${this.serviceName}: skipping "${printable(key)}": ${printable(reason)}`);
    }
    for (const key of this.current) {
      if (skipped.has(key)) continue;
      this.current.delete(key);
      this.cleared.set(key, now);
    }
    for (const [key, clearedAt] of this.cleared) {
      if (this.cleared.size <= MAX_CLEARED && now - clearedAt < REMEMBER_CLEARED_MS) break;
      this.cleared.delete(key);
    }
  }
}
