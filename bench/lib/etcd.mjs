// A throwaway etcd per benchmark (scripts/local-etcd.mjs: free loopback ports, temp data dir) and what
// etcd tells about its own cost: Prometheus counters from /metrics and CPU time from /proc.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startEtcd } from '../../scripts/local-etcd.mjs';
import { reportPid } from './processes.mjs';

export async function startBenchEtcd() {
  const etcd = await startEtcd();
  reportPid(etcd.pid, 'etcd');
  return etcd;
}

/** etcd's /metrics as a list of { name, labels, value }. */
export async function scrapeMetrics(endpoint) {
  const text = await (await fetch(`${endpoint}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function metricSum(samples, name, labels = {}) {
  let sum = 0;
  for (const sample of samples) {
    if (sample.name !== name) continue;
    if (Object.entries(labels).every(([key, value]) => sample.labels[key] === value)) sum += sample.value;
  }
  return sum;
}

/** The counters the benchmarks read, in one snapshot. */
export async function etcdCounters(etcd) {
  const samples = await scrapeMetrics(etcd.endpoint);
  const received = (method) => metricSum(samples, 'grpc_server_msg_received_total', { grpc_method: method });
  return {
    at: Date.now(),
    keepAliveRequests: received('LeaseKeepAlive'),
    keepAliveStreams: metricSum(samples, 'grpc_server_started_total', { grpc_method: 'LeaseKeepAlive' }),
    leaseRenewals: metricSum(samples, 'etcd_debugging_lease_renewed_total'),
    leasesGranted: metricSum(samples, 'etcd_debugging_lease_granted_total'),
    requests: metricSum(samples, 'grpc_server_msg_received_total'),
    receivedBytes: metricSum(samples, 'etcd_network_client_grpc_received_bytes_total'),
    sentBytes: metricSum(samples, 'etcd_network_client_grpc_sent_bytes_total'),
    watchers: metricSum(samples, 'etcd_debugging_mvcc_watcher_total'),
    watchStreams: metricSum(samples, 'etcd_debugging_mvcc_watch_stream_total'),
    keys: metricSum(samples, 'etcd_debugging_mvcc_keys_total'),
    dbInUseBytes: metricSum(samples, 'etcd_mvcc_db_total_size_in_use_in_bytes'),
    cpuMs: processCpuMs(etcd.pid),
  };
}

/** CPU time (user + system) a process has used, ms; clock-tick resolution (10 ms). */
export function processCpuMs(pid) {
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

export function etcdVersion() {
  try {
    return /etcd Version:\s*(\S+)/.exec(execFileSync('etcd', ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
