import type { Logger } from '@nestjs/common';
import { printable } from '../common/printable.js';

/** Keys one prefix may hold in memory. 5,000 instances of one service fit with room to spare. */
export const DEFAULT_MAX_ENTRIES = 10_000;
/** Raw key and value bytes one prefix may hold: 5,000 records of a few KiB fit; a prefix stuffed with 1.5 MiB values does not. */
export const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;

export interface MirrorCaps {
  readonly maxEntries: number;
  readonly maxBytes: number;
}

const DEFAULT_CAPS: MirrorCaps = Object.freeze({ maxEntries: DEFAULT_MAX_ENTRIES, maxBytes: DEFAULT_MAX_BYTES });

/** The caps a mirror's options ask for; the defaults are one shared object (a client may hold thousands of mirrors). */
export function capsOf(options: { readonly maxEntries?: number; readonly maxBytes?: number }): MirrorCaps {
  if (options.maxEntries === undefined && options.maxBytes === undefined) return DEFAULT_CAPS;
  return { maxEntries: options.maxEntries ?? DEFAULT_MAX_ENTRIES, maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES };
}

/** The cap that holding `entries` keys of `bytes` value bytes would break, named for a log line; undefined if none. */
export function brokenCap(caps: MirrorCaps, entries: number, bytes: number): string | undefined {
  if (entries > caps.maxEntries) return `maxEntries cap (${caps.maxEntries} keys)`;
  if (bytes > caps.maxBytes) return `maxBytes cap (${caps.maxBytes} bytes of keys and values)`;
  return undefined;
}

/**
 * One warning when a prefix goes over a cap and one line when it is back under, however many keys or
 * events that concerns: a flood of writes must not turn into a flood of log lines.
 */
export class CapWarning {
  private over?: string;

  constructor(
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  crossed(cap: string): void {
    if (this.over !== undefined) return;
    this.over = cap;
    this.logger.warn(`${printable(this.prefix)} holds more than its ${cap}: keys past the cap are ignored until there is room`);
  }

  cleared(): void {
    if (this.over === undefined) return;
    this.logger.log(`${printable(this.prefix)} is back under its ${this.over}: every key is mirrored again`);
    this.over = undefined;
  }
}
