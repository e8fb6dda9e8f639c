// Quick check of local-etcd.mjs against the real etcd binary: `node scripts/local-etcd.selftest.mjs`.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { compact, startEtcd, startEtcdCluster } from './local-etcd.mjs';

const b64 = (/** @type {string} */ s) => Buffer.from(s).toString('base64');

async function post(/** @type {string} */ endpoint, /** @type {string} */ path, /** @type {object} */ body) {
  const res = await fetch(endpoint + path, { method: 'POST', body: JSON.stringify(body) });
  assert.ok(res.ok, `${path}: HTTP ${res.status} ${await res.clone().text()}`);
  return res.json();
}

async function step(/** @type {string} */ label, /** @type {() => Promise<unknown>} */ fn) {
  const t0 = performance.now();
  const out = await fn();
  console.log(`${label.padEnd(44)} ${(performance.now() - t0).toFixed(0).padStart(6)} ms`);
  return out;
}

const get = async (/** @type {string} */ endpoint, /** @type {string} */ key) => {
  const r = await post(endpoint, '/v3/kv/range', { key: b64(key) });
  return r.kvs?.[0] ? Buffer.from(r.kvs[0].value, 'base64').toString() : undefined;
};

// Single node
const node = await step('single: start', () => startEtcd());
await step('single: put /a=1 via gateway', () => post(node.endpoint, '/v3/kv/put', { key: b64('/a'), value: b64('1') }));
const oldPid = node.pid;
await step('single: restart', () => node.restart());
assert.notEqual(node.pid, oldPid);
assert.equal(await get(node.endpoint, '/a'), '1', 'data survives restart');
await post(node.endpoint, '/v3/kv/put', { key: b64('/a'), value: b64('2') });
const rev = await step('single: compact', () => compact(node.endpoint));
assert.ok(rev >= 3, `revision ${rev}`);
await assert.rejects(post(node.endpoint, '/v3/kv/range', { key: b64('/a'), revision: rev - 1 }), /compacted/);
assert.equal(await compact(node.endpoint), rev, 'compacting again at the same revision is fine');
await step('single: stop (twice)', async () => { await node.stop(); await node.stop(); });
assert.equal(node.pid, undefined);
await step('single: destroy', () => node.destroy());
assert.ok(!existsSync(node.dataDir), 'data dir removed');

// Port conflict with fixed ports gives a clear error
const blocker = await startEtcd();
await step('single: fixed port in use -> error', () =>
  assert.rejects(startEtcd({ clientPort: blocker.clientPort }), /address already in use/));
await blocker.destroy();

// Three-node cluster
const cluster = await step('cluster: start 3', () => startEtcdCluster(3));
const leader = /** @type {import('./local-etcd.d.mts').LocalEtcd} */ (await step('cluster: leader()', () => cluster.leader()));
await post(leader.endpoint, '/v3/kv/put', { key: b64('/c'), value: b64('x') });
await step(`cluster: kill -9 leader ${leader.name}`, () => leader.kill());
const next = /** @type {import('./local-etcd.d.mts').LocalEtcd} */ (await step('cluster: new leader elected', () => cluster.leader(5_000)));
assert.notEqual(next.name, leader.name);
await step(`cluster: restart ${leader.name}`, () => leader.restart());
assert.equal(await get(leader.endpoint, '/c'), 'x', 'restarted member has the data');
await step('cluster: restartAll', () => cluster.restartAll());
assert.equal(await get(cluster.endpoints[2], '/c'), 'x');
await step('cluster: destroy', () => cluster.destroy());
assert.ok(cluster.members.every((m) => m.pid === undefined && !existsSync(m.dataDir)));

console.log('selftest ok');
