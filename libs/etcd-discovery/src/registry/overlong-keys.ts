import type { Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { LogBudget } from '../common/log-budget.js';
import { printable } from '../common/printable.js';

/**
 * Longest key part after the prefix that is read. Our instance ids are under 100 bytes; etcd takes
 * keys up to 1.5 MiB. Longer keys are never turned into strings: V8 does not hash strings over
 * 16,383 characters, so a thousand 20 KB keys made every Map operation compare 20 KB and froze a
 * client's event loop for seconds per update, and a cap on value bytes did not see them.
 */
export const MAX_KEY_BYTES_AFTER_PREFIX = 512;
/** Over-long keys remembered (by digest) to log each once; past this, one line says more were skipped. */
const MAX_REMEMBERED = 10_000;

export class OverlongKeys {
  private readonly limit: number;
  /** Made on the first over-long key: most prefixes never see one, and a client may follow thousands. */
  private seen?: Set<string>;
  private saturated = false;
  /** One line per key, but no more than 20 per 10 s: a thousand long keys are one burst of lines, then a count. */
  private lines?: LogBudget;

  constructor(
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {
    this.limit = Buffer.byteLength(prefix) + MAX_KEY_BYTES_AFTER_PREFIX;
  }

  /** True (and logged once per key) when `key` is too long to be read. */
  refuses(key: Buffer): boolean {
    if (key.length <= this.limit) return false;
    const digest = createHash('sha256').update(key).digest('hex').slice(0, 16);
    this.seen ??= new Set();
    this.lines ??= new LogBudget(20, 10_000, (count) => this.logger.warn(`${printable(this.prefix)}: ${count} more over-long keys skipped in the last 10 s`));
    if (this.seen.has(digest)) return true;
    if (this.seen.size >= MAX_REMEMBERED) {
      if (!this.saturated) this.logger.warn(`${printable(this.prefix)}: more than ${MAX_REMEMBERED} over-long keys; skipping the rest silently`);
      this.saturated = true;
      return true;
    }
    this.seen.add(digest);
    const head = printable(key.subarray(0, 120).toString('utf8'), 120);
    this.lines.spend(() =>
      this.logger.warn(`${printable(this.prefix)}: skipping a key of ${key.length} bytes ("${head}", sha256 ${digest}): keys over ${MAX_KEY_BYTES_AFTER_PREFIX} bytes after the prefix are not read`),
    );
    return true;
  }
}
