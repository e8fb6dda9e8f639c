// The demo: a throwaway etcd, three greeter replicas and the gateway. Shows calls balanced across
// replicas, a graceful stop and a crash with traffic moving on, and a new replica joining.
// Everything started here is stopped by PID at the end, also on failure or Ctrl-C.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { freePort, startEtcd } from './local-etcd.mjs';

const TTL_SECONDS = 3;
const children = new Set();
let etcd;

function log(text) {
  console.log(`\n== ${text}`);
}

/** Starts an app; its discovery log lines are shown with a prefix, the Nest boot chatter is not. */
function startApp(name, script, env) {
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, NO_COLOR: '1', ETCD_HOSTS: etcd.endpoint, LEASE_TTL_SECONDS: String(TTL_SECONDS), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const lines = [];
  const onData = (chunk) => {
    for (const line of String(chunk).split('\n')) {
      if (!line.trim()) continue;
      lines.push(line);
      if (/\[(EtcdRegistration|EtcdDiscovery)\]|listening|ERROR|WARN/.test(line)) {
        console.log(`  [${name}] ${line.replace(/^\[Nest\] \d+\s+- .*? (?=LOG|WARN|ERROR)/, '')}`);
      }
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  return { name, child, lines };
}

async function waitFor(what, predicate, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main() {
  log('starting a throwaway etcd on a free loopback port');
  etcd = await startEtcd();
  console.log(`  etcd ${etcd.endpoint} (pid ${etcd.pid}, data ${etcd.dataDir})`);

  log('starting three greeter replicas (gRPC on port 0: each registers the port it really bound)');
  const zones = ['zone-a', 'zone-b', 'zone-c'];
  const greeters = zones.map((zone, index) =>
    startApp(`greeter-${index + 1}`, 'apps/greeter/dist/main.js', { GREETER_ZONE: zone, GREETER_WEIGHT: String(index + 1) }),
  );

  const gatewayPort = await freePort();
  const metricsPort = await freePort();
  log(`starting the gateway (HTTP on 127.0.0.1:${gatewayPort}, Prometheus metrics on :${metricsPort}), which finds greeter through etcd`);
  startApp('gateway', 'apps/gateway/dist/main.js', { PORT: String(gatewayPort), METRICS_PORT: String(metricsPort) });
  const base = `http://127.0.0.1:${gatewayPort}`;
  const get = async (path) => {
    const response = await fetch(base + path);
    return response.json();
  };
  const instances = await waitFor('3 live greeters', async () => {
    const list = await get('/instances');
    return Array.isArray(list) && list.length === 3 ? list : undefined;
  });
  console.table(instances.map((instance) => ({ id: instance.id, address: instance.address, zone: instance.metadata.zone, weight: instance.metadata.weight })));

  log('the registry as etcd holds it: the package\'s CLI, `nestjs-etcd-discovery ls` (age from startedAt, ttl = lease time left)');
  const ls = spawn(process.execPath, ['libs/etcd-discovery/dist/cli/main.js', 'ls', '--endpoints', etcd.endpoint], { stdio: ['ignore', 'inherit', 'inherit'] });
  children.add(ls);
  const [lsExit] = await once(ls, 'exit');
  children.delete(ls);
  if (lsExit !== 0) throw new Error(`nestjs-etcd-discovery ls exited with ${lsExit}`);

  log('one call, and one server-streaming call');
  console.log(' ', await get('/hello?name=demo'));
  console.log(' ', await get('/stream?name=demo&count=2'));

  log('300 calls, balanced per call inside grpc-js (round robin)');
  printBurst(await get('/burst?n=300&concurrency=16'));

  log('600 calls with the metadata_weighted policy: weights 1:2:3 from each replica\'s registration');
  printBurst(await get('/burst?n=600&concurrency=16&policy=metadata_weighted'));

  log('300 calls preferring zone-b: only the zone-b replica is called while it is live');
  printBurst(await get('/burst?n=300&concurrency=16&zone=zone-b'));

  log(`SIGTERM to ${greeters[0].name} during 600 calls: it deregisters, drains, then stops`);
  const duringStop = get('/burst?n=600&concurrency=8');
  await new Promise((resolve) => setTimeout(resolve, 150));
  greeters[0].child.kill('SIGTERM');
  printBurst(await duringStop);
  await once(greeters[0].child, 'exit').catch(() => undefined);

  log(`kill -9 of ${greeters[1].name}: connections drop (calls caught by it are retried on another replica), then its lease expires (TTL ${TTL_SECONDS} s)`);
  const killedAt = Date.now();
  greeters[1].child.kill('SIGKILL');
  printBurst(await get('/burst?n=300&concurrency=8'));
  await waitFor('the killed replica to leave etcd', async () => ((await get('/instances')).length === 1 ? true : undefined));
  console.log(`  its key left etcd ${Date.now() - killedAt} ms after the kill`);

  log('300 calls preferring zone-b again: zone-b has no live replica, so every zone is called');
  printBurst(await get('/burst?n=300&concurrency=16&zone=zone-b'));

  log('a new replica joins and takes traffic without any client restart');
  startApp('greeter-4', 'apps/greeter/dist/main.js', { GREETER_ZONE: 'zone-d' });
  await waitFor('2 live greeters', async () => ((await get('/instances')).length === 2 ? true : undefined));
  printBurst(await get('/burst?n=300&concurrency=16'));
  log(`the gateway's discovery metrics, as Prometheus scrapes them from http://127.0.0.1:${metricsPort}/metrics`);
  const scraped = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  for (const line of scraped.split('\n').filter((text) => text.startsWith('etcd_discovery_'))) console.log(`  ${line.replace(/,?otel_scope_\w+="[^"]*"/g, '')}`);
  log('demo finished');
}

function printBurst(result) {
  const rows = Object.entries(result.byInstance).map(([address, calls]) => ({ address, calls, share: `${((100 * calls) / result.calls).toFixed(1)}%` }));
  console.table(rows);
  console.log(`  calls: ${result.calls}, failed: ${result.failed}`);
}

async function cleanup() {
  for (const child of children) child.kill('SIGTERM');
  await Promise.race([
    Promise.all([...children].map((child) => once(child, 'exit'))),
    new Promise((resolve) => setTimeout(resolve, 5_000)),
  ]);
  for (const child of children) child.kill('SIGKILL');
  await etcd?.destroy();
}

process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
try {
  await main();
} catch (error) {
  console.error(`demo failed: ${error.stack ?? error}`);
  process.exitCode = 1;
} finally {
  log('stopping every process started, by PID, and removing the etcd data dir');
  await cleanup();
}
