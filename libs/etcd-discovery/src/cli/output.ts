import Table from 'cli-table3';
import { printable } from '../common/printable.js';

/** One line on stdout. */
export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** One line on stderr: notes, warnings and errors, so stdout stays parseable. */
export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** cli-table3's layout grows faster than its rows (a 20,000-record registry took 92 s): beyond this, plain columns. */
const MAX_BOXED_ROWS = 1_000;

/** A plain table: no colours, every cell made printable (keys and metadata come from whoever wrote etcd). */
export function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const cells = rows.map((row) => row.map((cell) => printable(cell)));
  if (cells.length > MAX_BOXED_ROWS) return columns(head, cells);
  const rendered = new Table({ head: [...head], style: { head: [], border: [], compact: true } });
  for (const row of cells) rendered.push(row);
  return rendered.toString();
}

/** Left-aligned columns two spaces apart, in one pass over the rows. */
function columns(head: readonly string[], rows: readonly string[][]): string {
  const widths = head.map((title, column) => rows.reduce((width, row) => Math.max(width, row[column]?.length ?? 0), title.length));
  const line = (row: readonly string[]): string => row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** `42s`, `5m07s`, `3h12m`, `2d04h`. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3_600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3_600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor(s / 3_600) % 24)}h`;
}

function pad(value: number): string {
  return String(value).padStart(2, '0');
}
