// Garbage under a service prefix is skipped and logged once per key, never listed, never fatal;
// valid records beside it (ours, Go's endpoints JSON, plain host:port) are listed.
import { describe, expect, it } from 'vitest';
import { record, recordLogs, uniqueNamespace } from '../support/etcd.js';
import { useEtcd } from '../support/use-etcd.js';
import { holdsFor, waitFor } from '../support/wait.js';
import { followService } from './follow-service.js';

const logs = recordLogs();
const fx = useEtcd();

const ONE_MIB = 1024 * 1024;

/** Key suffix (under the service prefix) -> bad value. Garbage addresses use ports 71xx. */
const GARBAGE: Readonly<Record<string, string | Buffer>> = {
  'g-bytes': Buffer.from([0xff, 0x00, 0xfe, 0x9c, 0x01, 0x7f, 0x80, 0x3a]),
  'g-bad-json': '{"Addr":"127.0.0.1:7100",',
  'g-addr-number': '{"Addr":7101}',
  'g-metadata-string': '{"Addr":"127.0.0.1:7102","Metadata":"zone-a"}',
  'g-array': '["127.0.0.1:7103"]',
  'g-nope': '{"Addr":"nope"}',
  'g-port-range': '{"Addr":"127.0.0.1:99999"}',
  'g-empty': '',
  'g-go-deleted': '{"Op":1,"Addr":"127.0.0.1:7106"}',
  'g-huge': JSON.stringify({ Addr: '127.0.0.1:7104', Metadata: { pad: 'x'.repeat(ONE_MIB) } }),
  // Well-formed records at keys that break the rules:
  'x/y': record('127.0.0.1:7105'),
  'z-duplicate': record('127.0.0.1:7001', { copy: true }),
};

/** Valid records: ours, Go's endpoints manager JSON (Metadata null), a seed-style plain host:port. */
const VALID: Readonly<Record<string, string>> = {
  'a-ours': record('127.0.0.1:7001', { zone: 'eu-1' }),
  'a-go': '{"Addr":"127.0.0.1:7002","Metadata":null}',
  'a-plain': '127.0.0.1:7003',
};

async function putAll(prefix: string, entries: Readonly<Record<string, string | Buffer>>): Promise<void> {
  for (const [suffix, value] of Object.entries(entries)) await fx.outsider.put(`${prefix}${suffix}`).value(value);
}

/** Skip warnings naming `key`, from `mark` on. */
function skipLines(key: string, mark: number) {
  return logs.lines.slice(mark).filter((line) => line.message.includes(`skipping ${JSON.stringify(key)}`));
}

function expectEachGarbageKeyLoggedOnce(prefix: string, mark: number): void {
  const counts = Object.fromEntries(Object.keys(GARBAGE).map((suffix) => [suffix, skipLines(`${prefix}${suffix}`, mark).length]));
  expect(counts).toEqual(Object.fromEntries(Object.keys(GARBAGE).map((suffix) => [suffix, 1])));
  for (const suffix of Object.keys(VALID)) expect(skipLines(`${prefix}${suffix}`, mark)).toEqual([]);
  for (const line of skipLines(prefix, mark)) expect(line.level).toBe('warn');
}

const GARBAGE_PORTS = /:(71\d\d|99999)$/;

describe('garbage under a service prefix', () => {
  it('skips garbage present at the first list, logging each key once, and lists the valid records beside it', async () => {
    const ns = uniqueNamespace('garbage-list');
    const prefix = `${ns}/svc/`;
    await putAll(prefix, VALID);
    await putAll(prefix, GARBAGE);
    const mark = logs.lines.length;

    const followed = followService(fx, ns, 'svc');
    await waitFor(() => followed.addresses(), 2_000, { what: 'the first list' });
    expect(followed.emissions).toHaveLength(1);
    expect(followed.emissions[0]).toEqual([
      { id: 'a-go', key: `${prefix}a-go`, address: '127.0.0.1:7002', host: '127.0.0.1', port: 7002, metadata: {} },
      { id: 'a-ours', key: `${prefix}a-ours`, address: '127.0.0.1:7001', host: '127.0.0.1', port: 7001, metadata: { zone: 'eu-1' } },
      { id: 'a-plain', key: `${prefix}a-plain`, address: '127.0.0.1:7003', host: '127.0.0.1', port: 7003, metadata: {} },
    ]);
    await waitFor(() => skipLines(`${prefix}z-duplicate`, mark).length > 0, 500, { what: 'skip lines' });
    expectEachGarbageKeyLoggedOnce(prefix, mark);
    // A hostile value is previewed, not dumped into the log.
    for (const line of skipLines(prefix, mark)) expect(line.message.length).toBeLessThan(500);

    // Rewriting the same garbage, and unrelated changes that rebuild the list, log nothing new.
    await putAll(prefix, GARBAGE);
    await fx.outsider.put(`${prefix}a-late`).value(record('127.0.0.1:7004'));
    await waitFor(() => followed.addresses()?.includes('127.0.0.1:7004'), 1_000, { what: 'a-late listed' });
    expectEachGarbageKeyLoggedOnce(prefix, mark);
    expect(followed.emissions.flat().filter((instance) => GARBAGE_PORTS.test(instance.address))).toEqual([]);
    expect(followed.errors).toEqual([]);
  });

  it('skips garbage written while watching, once per key even when the same value is written again', async () => {
    const ns = uniqueNamespace('garbage-watch');
    const prefix = `${ns}/svc/`;
    await fx.outsider.put(`${prefix}a-ours`).value(VALID['a-ours']);
    const followed = followService(fx, ns, 'svc');
    await waitFor(() => followed.addresses()?.length === 1, 2_000, { what: 'the first list' });
    const mark = logs.lines.length;

    await putAll(prefix, GARBAGE);
    // Events arrive in revision order: once a later valid put is listed, every garbage event was applied.
    await fx.outsider.put(`${prefix}a-go`).value(VALID['a-go']);
    await waitFor(() => followed.addresses()?.length === 2, 1_000, { what: 'a-go listed' });
    await putAll(prefix, GARBAGE);
    await fx.outsider.put(`${prefix}a-plain`).value(VALID['a-plain']);
    await waitFor(() => followed.addresses()?.length === 3, 1_000, { what: 'a-plain listed' });

    expect(followed.addresses()).toEqual(['127.0.0.1:7002', '127.0.0.1:7001', '127.0.0.1:7003']);
    expectEachGarbageKeyLoggedOnce(prefix, mark);
    expect(followed.emissions.flat().filter((instance) => GARBAGE_PORTS.test(instance.address))).toEqual([]);
    // The duplicate never doubled 7001's share: one entry per address in every list.
    for (const list of followed.emissions) expect(new Set(list.map((i) => i.address)).size).toBe(list.length);
    await holdsFor(() => followed.addresses()?.length === 3, 300, { what: 'the list stays valid' });
    expect(followed.errors).toEqual([]);
  });
});
