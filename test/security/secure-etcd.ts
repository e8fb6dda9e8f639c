// etcd set up the way a hardened deployment runs it: client TLS (optionally mTLS) or RBAC users confined to
// the namespace prefix. Each is a fresh node on free loopback ports with a temp data dir (scripts/local-etcd.mjs).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Etcd3, type IOptions } from 'etcd3';
import { startEtcd, type LocalEtcd } from '../../scripts/local-etcd.mjs';
import type { CertificateAuthority, CertifiedKey, TestPki } from '../support/certs.js';

const run = promisify(execFile);

export interface TlsEtcd {
  readonly etcd: LocalEtcd;
  readonly ca: CertificateAuthority;
  /** Signed by `ca`; accepted by etcd as a client certificate. */
  readonly clientCert: CertifiedKey;
  /** etcd's output (warn level and up), for counting rejected connections. */
  readonly logFile: string;
}

/** etcd serving https on 127.0.0.1 with a certificate from a new CA; `clientCertAuth` adds --client-cert-auth. */
export async function startTlsEtcd(pki: TestPki, label: string, clientCertAuth: boolean): Promise<TlsEtcd> {
  const ca = await pki.createAuthority(`${label}-ca`);
  const serverCert = await ca.issue(`${label}-etcd`, { altNames: ['IP:127.0.0.1', 'DNS:localhost'] });
  const clientCert = await ca.issue(`${label}-client`, { altNames: [], commonName: `${label}-client` });
  const logFile = join(pki.dir, `${label}-etcd.log`);
  const etcd = await startEtcd({
    logFile,
    tls: { certFile: serverCert.certFile, keyFile: serverCert.keyFile, trustedCaFile: ca.certFile, clientCertAuth },
  });
  return { etcd, ca, clientCert, logFile };
}

/** A plain etcd3 client (no library code) for inspecting and writing the registry. */
export function etcdClient(endpoint: string, extra: Pick<IOptions, 'credentials' | 'auth'> = {}): Etcd3 {
  return new Etcd3({ hosts: [endpoint], ...extra });
}

export interface RejectedConnection {
  /** When etcd logged it, epoch ms. */
  readonly at: number;
  readonly error: string;
}

/** Connections etcd logged as rejected (TLS handshake refused) since `sinceMs` (epoch ms), oldest first. */
export async function rejectedConnections(logFile: string, sinceMs: number): Promise<RejectedConnection[]> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const rejected: RejectedConnection[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes('rejected connection')) continue;
    try {
      const entry = JSON.parse(line) as { ts?: string; error?: string };
      const at = entry.ts === undefined ? Number.NaN : Date.parse(entry.ts);
      if (at >= sinceMs) rejected.push({ at, error: entry.error ?? '?' });
    } catch {
      // a line cut by a concurrent write: not counted
    }
  }
  return rejected;
}

/** The distinct error texts of rejected connections. */
export const rejectionReasons = (rejected: readonly RejectedConnection[]): string =>
  [...new Set(rejected.map((entry) => entry.error))].join(', ');

export interface EtcdUser {
  readonly username: string;
  readonly password: string;
}

/** etcdctl against one endpoint (as `user`, once auth is on). */
export async function etcdctl(endpoint: string, args: readonly string[], user?: EtcdUser): Promise<string> {
  const auth = user ? ['--user', `${user.username}:${user.password}`] : [];
  const { stdout } = await run('etcdctl', ['--endpoints', endpoint, ...auth, ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    timeout: 10_000,
  });
  return stdout.trim();
}

export interface RbacEtcd {
  readonly etcd: LocalEtcd;
  readonly root: EtcdUser;
  /** Role svc-rw: readwrite on `<namespace>/` only. */
  readonly writer: EtcdUser;
  /** Role svc-ro: read on `<namespace>/` only. */
  readonly reader: EtcdUser;
  /** Role other-ro: read on another prefix only (a user of a different team). */
  readonly stranger: EtcdUser;
}

/**
 * etcd with auth enabled: root, a serving user with readwrite on the namespace prefix only, a calling user with
 * read on it only, and a user with read on another prefix only (etcdctl, as an operator would).
 */
export async function startRbacEtcd(namespace: string, suffix: string): Promise<RbacEtcd> {
  const etcd = await startEtcd();
  const root: EtcdUser = { username: 'root', password: `root-${suffix}` };
  const writer: EtcdUser = { username: 'svc-writer', password: `writer-${suffix}` };
  const reader: EtcdUser = { username: 'svc-reader', password: `reader-${suffix}` };
  const stranger: EtcdUser = { username: 'other-team', password: `stranger-${suffix}` };
  const ctl = (...args: string[]): Promise<string> => etcdctl(etcd.endpoint, args);
  try {
    await ctl('user', 'add', `${root.username}:${root.password}`);
    await ctl('role', 'add', 'svc-rw');
    await ctl('role', 'grant-permission', 'svc-rw', '--prefix=true', 'readwrite', `${namespace}/`);
    await ctl('role', 'add', 'svc-ro');
    await ctl('role', 'grant-permission', 'svc-ro', '--prefix=true', 'read', `${namespace}/`);
    await ctl('user', 'add', `${writer.username}:${writer.password}`);
    await ctl('user', 'grant-role', writer.username, 'svc-rw');
    await ctl('user', 'add', `${reader.username}:${reader.password}`);
    await ctl('user', 'grant-role', reader.username, 'svc-ro');
    await ctl('role', 'add', 'other-ro');
    await ctl('role', 'grant-permission', 'other-ro', '--prefix=true', 'read', `${namespace}-other-team/`);
    await ctl('user', 'add', `${stranger.username}:${stranger.password}`);
    await ctl('user', 'grant-role', stranger.username, 'other-ro');
    await ctl('auth', 'enable');
  } catch (error) {
    await etcd.destroy();
    throw error;
  }
  return { etcd, root, writer, reader, stranger };
}
