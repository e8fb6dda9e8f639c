// etcd's gRPC proxy (`etcd grpc-proxy start`, in the etcd binary) in front of a benchmark's etcd, on a free
// loopback port, with a temp data dir; and `etcdctl` processes. Each is tracked by PID (processes.mjs) and
// stopped by PID.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../scripts/local-etcd.mjs';
import { waitUntil } from './common.mjs';
import { Child } from './processes.mjs';

/** ETCD_* / ETCDCTL_* variables would override or conflict with the flags given here. */
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ETCD')));

const hostPort = (url) => url.replace(/^https?:\/\//, '');

/** A proxy in front of `etcd`; `endpoint` is its client URL (also serving /health and /metrics). */
export async function startGrpcProxy(etcd) {
  const port = await freePort();
  // The proxy creates its data dir (default ./default.proxy) even when it has nothing to keep.
  const dataDir = await mkdtemp(join(tmpdir(), 'etcd-grpc-proxy-'));
  const args = ['grpc-proxy', 'start', `--endpoints=${hostPort(etcd.endpoint)}`, `--listen-addr=127.0.0.1:${port}`, `--data-dir=${dataDir}`];
  const child = new Child('grpc-proxy', spawn('etcd', args, { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(async () => {
      if (!child.alive) throw new Error(`grpc-proxy exited:\n${child.tail()}`);
      const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
      return res?.ok && /"health":\s*"true"/.test(await res.text());
    }, 15_000, 'the grpc-proxy to answer /health', 50);
  } catch (error) {
    await child.stop(2_000);
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    endpoint,
    pid: child.pid,
    args: args.slice(2),
    async stop() {
      await child.stop(5_000);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** `etcdctl watch --prefix PREFIX` against `endpoint`, running until stopped. */
export function etcdctlWatch(endpoint, prefix, name = 'etcdctl-watch') {
  return new Child(name, spawn('etcdctl', [`--endpoints=${hostPort(endpoint)}`, 'watch', '--prefix', prefix], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] }));
}
