// The registry CLI (the package's bin) as an operator runs it: the BUILT dist in its own process, against a real
// etcd written with etcdctl the way a Go service using etcd's naming format (or an operator) writes it.
import { access, constants } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { etcdClient, startTlsEtcd, type TlsEtcd } from '../security/secure-etcd.js';
import { createTestPki, type TestPki } from '../support/certs.js';
import { uniqueNamespace, useProcesses } from '../support/processes.js';
import { useEtcd } from '../support/use-etcd.js';
import { CLI_MAIN, cliEnv, etcdctl, grantLease, namingRecord, putKey, registryCli } from './registry-cli.js';

interface ListedInstance {
  service: string;
  id: string;
  key: string;
  address: string;
  zone: string | null;
  version: string | null;
  weight: number;
  startedAt: string | null;
  ageSeconds: number | null;
  lease: string | null;
  leaseTtlSeconds: number | null;
}

interface Finding {
  kind: string;
  key: string;
  detail: string;
}

/** The cells of each row of a cli-table3 table (header first). */
function tableRows(text: string): string[][] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('│'))
    .map((line) => line.split('│').slice(1, -1).map((cell) => cell.trim()));
}

/** Seconds of an age the table prints as `42s` or `1m30s`. */
function ageSeconds(text: string): number {
  const match = /^(?:(\d+)m)?(\d+)s$/.exec(text);
  if (!match) throw new Error(`not an age of seconds or minutes: ${text}`);
  return Number(match[1] ?? 0) * 60 + Number(match[2]);
}

describe('registry CLI nestjs-etcd-discovery (built bin, real etcd)', () => {
  const processes = useProcesses();
  const fx = useEtcd({ beforeDestroy: () => processes.endFile() });
  const connection = (namespace: string): string[] => ['--endpoints', fx.etcd.endpoint, '--namespace', namespace];

  it('ls --json lists what etcdctl wrote in etcd naming format, with the lease TTL left; the table shows the same', async () => {
    await access(CLI_MAIN, constants.R_OK).catch(() => {
      throw new Error(`${CLI_MAIN} is missing: build the library first (npx tsc -b libs/etcd-discovery)`);
    });
    const namespace = uniqueNamespace('cli-ls');
    const endpoint = fx.etcd.endpoint;
    const lease = await grantLease(endpoint, 30);
    const startedAt = new Date(Date.now() - 90_000).toISOString();
    await putKey(endpoint, `${namespace}/greeter/go-1`, namingRecord('127.0.0.1:50051', { zone: 'eu-1', version: '1.4.0', weight: 3, startedAt }), lease);
    await putKey(endpoint, `${namespace}/billing/manual-1`, namingRecord('10.0.0.7:7000'));

    const json = await registryCli(['ls', '--json', ...connection(namespace)]);
    expect(json.code, json.stderr).toBe(0);
    const listing = JSON.parse(json.stdout) as { namespace: string; instances: ListedInstance[]; skipped: unknown[] };
    console.log(`[cli] ls --json: ${json.stdout.trim()}`);
    expect(listing.namespace).toBe(namespace);
    expect(listing.skipped).toEqual([]);
    expect(listing.instances).toEqual([
      expect.objectContaining({ service: 'billing', id: 'manual-1', address: '10.0.0.7:7000', weight: 1, startedAt: null, ageSeconds: null, lease: null, leaseTtlSeconds: null }),
      expect.objectContaining({ service: 'greeter', id: 'go-1', key: `${namespace}/greeter/go-1`, address: '127.0.0.1:50051', zone: 'eu-1', version: '1.4.0', weight: 3, startedAt, lease }),
    ]);
    const greeter = listing.instances[1];
    expect(greeter.leaseTtlSeconds).toBeGreaterThan(0);
    expect(greeter.leaseTtlSeconds).toBeLessThanOrEqual(30);
    expect(greeter.ageSeconds).toBeGreaterThanOrEqual(90);
    expect(greeter.ageSeconds).toBeLessThan(150);

    const text = await registryCli(['ls', 'greeter', ...connection(namespace)]);
    console.log(`[cli] ls greeter:\n${text.stdout}`);
    expect(text.code, text.stderr).toBe(0);
    const [head, ...rows] = tableRows(text.stdout);
    expect(head).toEqual(['service', 'instance', 'address', 'zone', 'version', 'weight', 'age', 'ttl']);
    expect(rows).toHaveLength(1);
    const [row] = rows;
    expect(row.slice(0, 6)).toEqual(['greeter', 'go-1', '127.0.0.1:50051', 'eu-1', '1.4.0', '3']);
    expect(ageSeconds(row[6])).toBeGreaterThanOrEqual(90);
    expect(row[7]).toMatch(/^\d+s$/);
    expect(ageSeconds(row[7])).toBeGreaterThan(0);
    expect(text.stdout).toContain(`1 instance of 1 service under ${namespace}/greeter/`);
  });

  it('check exits 0 on a clean registry and 1 naming garbage, a refused address, a duplicate, oversized values and keys, a key without lease', async () => {
    const namespace = uniqueNamespace('cli-check');
    // Written with a plain etcd3 client (no library code): the same keys as etcdctl's, without a process per write.
    const { ID: lease } = await fx.outsider.leaseClient.leaseGrant({ TTL: 30, ID: 0 });
    const key = (id: string): string => `${namespace}/greeter/${id}`;
    const put = (id: string, value: string, leased = true) => fx.outsider.put(key(id)).value(value).lease(leased ? lease : 0).exec();
    await put('a', namingRecord('127.0.0.1:50051', { zone: 'eu-1' }));

    const clean = await registryCli(['check', ...connection(namespace)]);
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    expect(clean.stdout).toMatch(new RegExp(`^clean: 1 key under ${namespace}/ at revision \\d+, no finding`));

    await put('junk', '{"Addr": 12');
    await put('imds', namingRecord('169.254.169.254:80'));
    await put('copy', namingRecord('localhost:50051'));
    await put('manual', namingRecord('127.0.0.1:50052'), false);
    await put('big', namingRecord('127.0.0.1:50053', { pad: 'x'.repeat(70_000) }));
    const longId = 'l'.repeat(600);
    await put(longId, namingRecord('127.0.0.1:50054'));

    const text = await registryCli(['check', ...connection(namespace)]);
    console.log(`[cli] check:\n${text.stdout}`);
    expect(text.code).toBe(1);
    expect(tableRows(text.stdout)).toContainEqual(['garbage', key('junk'), expect.stringContaining('invalid JSON')]);
    expect(text.stdout).toContain(`6 findings in 7 keys under ${namespace}/`);

    const json = await registryCli(['check', '--json', ...connection(namespace)]);
    expect(json.code).toBe(1);
    const { findings } = JSON.parse(json.stdout) as { findings: Finding[] };
    expect(findings.map((finding) => [finding.kind, finding.key])).toEqual([
      ['oversized-value', key('big')],
      ['duplicate', key('copy')],
      ['refused-address', key('imds')],
      ['garbage', key('junk')],
      ['oversized-key', key(longId).slice(0, 200)],
      ['no-lease', key('manual')],
    ]);
    const detailOf = (kind: string): string => findings.find((finding) => finding.kind === kind)!.detail;
    expect(detailOf('duplicate')).toContain(`duplicate of ${key('a')}`);
    expect(detailOf('refused-address')).toContain('169.254.169.254 is link-local');
    expect(detailOf('oversized-value')).toMatch(/^value of 700\d\d bytes exceeds 65536$/);
    expect(detailOf('oversized-key')).toContain(`key of ${Buffer.byteLength(key(longId))} bytes`);

    // --allowed-addresses is the module's allowedAddresses: what it allows is no finding, what it leaves out is.
    const allowing = await registryCli(['check', '--json', '--allowed-addresses', '169.254.169.254/32', ...connection(namespace)]);
    const allowed = (JSON.parse(allowing.stdout) as { findings: Finding[] }).findings;
    expect(allowed.filter((finding) => finding.kind === 'refused-address').map((finding) => [finding.key, finding.detail])).toEqual([
      [key('a'), 'address policy: 127.0.0.1 is not in allowedAddresses'],
      [key('copy'), 'address policy: host name localhost is not in allowedAddresses'],
      [key('manual'), 'address policy: 127.0.0.1 is not in allowedAddresses'],
    ]);
  });

  it('watch prints a line when an instance joins and when it leaves (text and --json), and exits 0 on SIGINT', async () => {
    const namespace = uniqueNamespace('cli-watch');
    const endpoint = fx.etcd.endpoint;
    const args = ['watch', 'greeter', ...connection(namespace)];
    const text = processes.spawnNode('cli-watch', CLI_MAIN, cliEnv(), args);
    const json = processes.spawnNode('cli-watch-json', CLI_MAIN, cliEnv(), [...args, '--json']);
    await text.waitForOutput(/watching .*\/greeter\/: 0 instances present/);
    await json.waitForOutput(/watching .*\/greeter\/: 0 instances present/);

    const lease = await grantLease(endpoint, 30);
    await putKey(endpoint, `${namespace}/greeter/go-1`, namingRecord('127.0.0.1:50061', { zone: 'eu-1' }), lease);
    await text.waitForOutput(/joined +greeter 127\.0\.0\.1:50061 id=go-1 zone=eu-1/);
    await etcdctl(endpoint, ['lease', 'revoke', lease]);
    await text.waitForOutput(/left +greeter 127\.0\.0\.1:50061 id=go-1/);
    await json.waitForOutput(/"event":"left"/);

    for (const watch of [text, json]) {
      watch.signal('SIGINT');
      expect(await watch.awaitExit(10_000), watch.output()).toMatchObject({ code: 0, forced: false });
    }
    console.log(`[cli] watch output:\n${text.output()}`);
    const events = json
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { event: string; address: string; id: string });
    expect(events.map(({ event, address, id }) => ({ event, address, id }))).toEqual([
      { event: 'joined', address: '127.0.0.1:50061', id: 'go-1' },
      { event: 'left', address: '127.0.0.1:50061', id: 'go-1' },
    ]);
    expect(text.output().match(/joined|left/g)).toEqual(['joined', 'left']);
  });

  it('uses ETCDCTL_ENDPOINTS when no flag is given (a flag wins), exits 2 on a usage error and 3 at once when etcd is unreachable', async () => {
    const namespace = uniqueNamespace('cli-env');
    const endpoint = fx.etcd.endpoint;
    await fx.outsider.put(`${namespace}/greeter/env-1`).value(namingRecord('127.0.0.1:50071')).exec();
    const deadEndpoint = `127.0.0.1:${await freePort()}`;
    const ids = (stdout: string): string[] => (JSON.parse(stdout) as { instances: ListedInstance[] }).instances.map((instance) => instance.id);

    // Independent processes, run side by side. etcdctl's form of an endpoint: host:port without a scheme.
    const [fromEnv, flagWins, unknownFlag, badEndpoint, lsDown, checkDown] = await Promise.all([
      registryCli(['ls', '--json', '--namespace', namespace], cliEnv({ ETCDCTL_ENDPOINTS: endpoint.replace('http://', '') })),
      registryCli(['ls', '--json', ...connection(namespace)], cliEnv({ ETCDCTL_ENDPOINTS: deadEndpoint })),
      registryCli(['ls', '--bogus']),
      registryCli(['check', '--endpoints', 'http://127.0.0.1']),
      registryCli(['ls', '--request-timeout', '500'], cliEnv({ ETCDCTL_ENDPOINTS: deadEndpoint })),
      registryCli(['check', '--request-timeout', '500'], cliEnv({ ETCDCTL_ENDPOINTS: deadEndpoint })),
    ]);
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(ids(fromEnv.stdout)).toEqual(['env-1']);
    expect(flagWins.code, flagWins.stderr).toBe(0);
    expect(ids(flagWins.stdout)).toEqual(['env-1']);

    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr).toMatch(/Unknown option '--bogus'[\s\S]*nestjs-etcd-discovery ls --help/);
    expect(badEndpoint.code).toBe(2);
    expect(badEndpoint.stderr).toContain('option "etcd.hosts[0]" is invalid (got "http://127.0.0.1"): write an endpoint as "http://host:port"');
    expect(badEndpoint.stderr).toContain('(given by --endpoints)');

    for (const unreachable of [lsDown, checkDown]) {
      console.log(`[cli] against ${deadEndpoint}: exit ${unreachable.code} after ${unreachable.ms} ms: ${unreachable.stderr.trim()}`);
      expect(unreachable.code, unreachable.stderr).toBe(3);
      expect(unreachable.stderr).toContain(`cannot read etcd at http://${deadEndpoint}: etcd unreachable`);
      // 3 attempts of 500 ms at most, plus starting Node on a loaded machine.
      expect(unreachable.ms).toBeLessThan(15_000);
    }
  });
});

describe('registry CLI over mutual TLS (etcd with --client-cert-auth)', () => {
  let pki: TestPki | undefined;
  let tls: TlsEtcd | undefined;

  beforeAll(async () => {
    pki = await createTestPki();
    tls = await startTlsEtcd(pki, 'cli', true);
  });

  afterAll(async () => {
    await tls?.etcd.destroy();
    await pki?.destroy();
  });

  it('reads ETCDCTL_CACERT, ETCDCTL_CERT and ETCDCTL_KEY (https:// for a bare host:port); without a client certificate: exit 3, "TLS failed"', async () => {
    const { etcd, ca, clientCert } = tls!;
    const namespace = uniqueNamespace('cli-tls');
    const writer = etcdClient(etcd.endpoint, { credentials: { rootCertificate: ca.cert, privateKey: clientCert.key, certChain: clientCert.cert } });
    try {
      await writer.put(`${namespace}/greeter/tls-1`).value(namingRecord('127.0.0.1:50081')).exec();
    } finally {
      writer.close();
    }
    const hostPort = etcd.endpoint.replace('https://', '');
    const [withCertificate, withoutCertificate] = await Promise.all([
      registryCli(['ls', '--json', '--namespace', namespace], cliEnv({ ETCDCTL_ENDPOINTS: hostPort, ETCDCTL_CACERT: ca.certFile, ETCDCTL_CERT: clientCert.certFile, ETCDCTL_KEY: clientCert.keyFile })),
      registryCli(['ls', '--namespace', namespace, '--endpoints', hostPort, '--cacert', ca.certFile, '--request-timeout', '1000']),
    ]);
    expect(withCertificate.code, withCertificate.stderr).toBe(0);
    expect((JSON.parse(withCertificate.stdout) as { instances: ListedInstance[] }).instances.map((instance) => instance.address)).toEqual(['127.0.0.1:50081']);
    console.log(`[cli] ls without a client certificate: exit ${withoutCertificate.code}: ${withoutCertificate.stderr.trim()}`);
    expect(withoutCertificate.code).toBe(3);
    expect(withoutCertificate.stderr).toContain(`cannot read etcd at ${etcd.endpoint}: TLS failed`);
  });
});
