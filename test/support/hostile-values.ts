// Generated hostile registry contents: what a buggy or malicious writer with access to a service prefix could
// put there. Every value is built so that NO client may route a call by it: it is unreadable, out of bounds,
// refused by the address policy, or a second record for a live address (the oldest record holds an address).
// So a client that routes by any of them fails calls, and a client that chokes on one logs, throws or exits.

export type HostileCategory =
  | 'random-bytes'
  | 'deep-nesting'
  | 'huge-string'
  | 'wrong-types'
  | 'refused-address'
  | 'alias-of-live'
  | 'odd-shape';

export interface HostileValue {
  readonly category: HostileCategory;
  readonly value: string | Buffer;
}

const CATEGORIES: readonly HostileCategory[] = [
  'random-bytes',
  'deep-nesting',
  'huge-string',
  'wrong-types',
  'refused-address',
  'alias-of-live',
  'odd-shape',
];

/** Key suffixes that are odd on their own: control characters, terminal escapes, forged log lines, length. */
const ODD_KEY_TAILS = [
  '',
  '\n[Nest] 1  - 01/01/2026 LOG [EtcdDiscovery] greeter: +10.0.0.1:1 (forged); 9 live',
  '\u001b[31mred\u001b[0m',
  '\u0000nul',
  'ünïcødé-☃',
  ' spaces and "quotes" ',
  'x'.repeat(3_000),
  'nested/deeper/still',
  '/',
  '..',
  '%00%0a',
];

export class HostileValues {
  constructor(
    private readonly random: () => number,
    /** Addresses of live instances (`127.0.0.1:port`): copies of them must never gain traffic or metadata. */
    private readonly liveAddresses: readonly string[],
    /** How many values may be huge (about 70 KiB to 1.2 MiB each): they cost etcd space and time. */
    private hugeBudget: number,
  ) {}

  /** A key suffix under the service prefix; `index` makes it unique and findable in escaped log lines. */
  keySuffix(index: number): string {
    return `hostile-${String(index).padStart(5, '0')}-${this.pick(ODD_KEY_TAILS)}`;
  }

  next(): HostileValue {
    let category = this.pick(CATEGORIES);
    if (category === 'huge-string' && this.hugeBudget <= 0) category = 'wrong-types';
    return { category, value: this.build(category) };
  }

  private build(category: HostileCategory): string | Buffer {
    switch (category) {
      case 'random-bytes':
        return this.randomBytes();
      case 'deep-nesting':
        return this.deepNesting();
      case 'huge-string':
        this.hugeBudget -= 1;
        return this.hugeString();
      case 'wrong-types':
        return this.wrongTypes();
      case 'refused-address':
        return record(this.pick(['0.0.0.0', '[::]', '169.254.169.254', '[fe80::1]', '224.0.0.1', '255.255.255.255', '[ff02::1]', '[::ffff:169.254.169.254]']) + `:${this.port()}`, this.metadata());
      case 'alias-of-live':
        return this.aliasOfLive();
      case 'odd-shape':
        return this.oddShape();
    }
  }

  /** Starts with a control byte: never JSON, never host:port. */
  private randomBytes(): Buffer {
    const bytes = Buffer.alloc(1 + this.int(2_000));
    for (let i = 0; i < bytes.length; i++) bytes[i] = this.int(256);
    bytes[0] = 0x01;
    return bytes;
  }

  private deepNesting(): string {
    const levels = 9 + this.int(30_000);
    const open = this.random() < 0.5 ? '[' : '{"a":';
    const close = open === '[' ? ']' : '}';
    const nested = `${open.repeat(levels)}1${close.repeat(levels)}`;
    const live = this.pick(this.liveAddresses);
    return this.pick([
      `{"Addr":"${live}","Metadata":{"weight":${nested}}}`,
      `{"Addr":"${live}","Metadata":{"zone":${nested},"version":"1.0.0"}}`,
      `{"Addr":${nested}}`,
      nested,
      `{"Addr":"${live}","Metadata":${nested}}`,
    ]).slice(0, 60 * 1024);
  }

  private hugeString(): string {
    const size = 70 * 1024 + this.int(1_150 * 1024);
    return record(this.pick(this.liveAddresses), { pad: 'p'.repeat(size) });
  }

  /** Well-formed JSON with fields of the wrong type; where it would decode, its address is a live one's. */
  private wrongTypes(): string {
    const live = this.pick(this.liveAddresses);
    return this.pick([
      JSON.stringify({ Addr: this.int(65_536) }),
      JSON.stringify({ Addr: [live] }),
      JSON.stringify({ Addr: null, Metadata: {} }),
      JSON.stringify({ Addr: { host: '127.0.0.1', port: 1 } }),
      JSON.stringify({ Addr: live, Metadata: 'zone-a' }),
      JSON.stringify({ Addr: live, Metadata: [1, 2, 3] }),
      JSON.stringify({ Addr: live, Metadata: { weight: -5, zone: { nested: true }, version: 7 } }),
      JSON.stringify({ Addr: live, Metadata: { weight: 1e308, grpcServices: 'x' } }),
      JSON.stringify({ Addr: live, Metadata: { weight: '3' } }),
      JSON.stringify({ Addr: `${live.split(':')[0]}:${70_000 + this.int(1_000)}` }),
      JSON.stringify({ Addr: 'not an address' }),
      JSON.stringify({ Op: 1, Addr: live }),
      JSON.stringify([live]),
      'null',
      'true',
      '""',
      `"${live}"`,
      '',
      '{',
    ]);
  }

  /** The same endpoint as a live instance, spelled differently: must count as a duplicate. */
  private aliasOfLive(): string {
    const port = this.pick(this.liveAddresses).split(':')[1];
    const address = this.pick([`localhost:${port}`, `LOCALHOST:${port}`, `[::ffff:127.0.0.1]:${port}`, `127.0.0.1:${port}`]);
    return this.random() < 0.2 ? address : record(address, this.metadata());
  }

  /** Objects with too many keys or items, prototype-pollution keys, or odd characters. */
  private oddShape(): string {
    const live = this.pick(this.liveAddresses);
    const manyKeys = Object.fromEntries(Array.from({ length: 65 + this.int(500) }, (_, i) => [`k${i}`, i]));
    return this.pick([
      JSON.stringify({ Addr: live, Metadata: manyKeys }),
      JSON.stringify({ Addr: live, Metadata: { list: Array.from({ length: 257 + this.int(2_000) }, (_, i) => i) } }),
      `{"Addr":"${live}","Metadata":{"__proto__":{"weight":1000000},"constructor":{"prototype":{"polluted":true}}}}`,
      JSON.stringify({ Addr: `${live}\n`, Metadata: {} }),
      JSON.stringify({ Addr: `\u001b[31m${live}`, Metadata: {} }),
      // JSON.parse keeps the last of two equal keys: the live address, so a duplicate.
      `{"Addr":"127.0.0.9:1","Addr":"${live}"}`,
      JSON.stringify({ Addr: live, Metadata: { zone: '\u0000'.repeat(200), weight: 0 } }),
    ]);
  }

  private metadata(): Record<string, unknown> {
    return { weight: this.int(1_000_000), zone: this.pick(['local', 'rogue', '']), version: '9.9.9' };
  }

  private port(): number {
    return 1 + this.int(65_535);
  }

  private int(below: number): number {
    return Math.floor(this.random() * below);
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

function record(address: string, metadata: Record<string, unknown>): string {
  return JSON.stringify({ Addr: address, Metadata: metadata });
}
