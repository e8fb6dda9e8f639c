// Throwaway etcd nodes and clusters on loopback for tests and local runs. Node built-ins only.
// Types: local-etcd.d.mts. CLI: `node scripts/local-etcd.mjs [--cluster N]`.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const HEALTH_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;
const LOG_TAIL_LINES = 50;
const START_ATTEMPTS = 5;

/** @type {Set<import('node:child_process').ChildProcess>} etcd processes still alive. */
const live = new Set();
/** @type {Set<string>} temp data dirs we created and have not removed yet. */
const ownedDirs = new Set();

// Last line of defence for a crashing test run: 'exit' handlers must be synchronous.
process.on('exit', () => {
  for (const child of live) {
    try { process.kill(/** @type {number} */ (child.pid), 'SIGKILL'); } catch { /* already gone */ }
  }
  for (const dir of ownedDirs) {
    try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});

/**
 * A free TCP port on 127.0.0.1 (the OS picks it; it may be taken again before you bind it).
 * @returns {Promise<number>}
 */
export async function freePort() {
  const [port] = await freePorts(1);
  return port;
}

/** Hold all servers open until every port is known, so the ports are distinct. */
async function freePorts(/** @type {number} */ n) {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  })));
  const ports = servers.map((s) => /** @type {import('node:net').AddressInfo} */ (s.address()).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/**
 * POST JSON to etcd's gRPC gateway (`/v3/...` in 3.4) and return the parsed answer.
 * @param {string} endpoint @param {string} path @param {object} body @param {number} [timeoutMs]
 * @param {ClientTls} [tls] for an https endpoint
 */
async function gateway(endpoint, path, body, timeoutMs = 2_000, tls = undefined) {
  const res = await httpText(endpoint + path, { method: 'POST', body: JSON.stringify(body), timeoutMs, tls });
  if (!res.ok) throw new Error(`etcd ${path} -> HTTP ${res.status}: ${res.text}`);
  return JSON.parse(res.text);
}

/** @typedef {{ ca: Buffer, cert?: Buffer, key?: Buffer }} ClientTls */

/**
 * One HTTP(S) request. Plain http goes through fetch as before; https uses node:https, since fetch takes no
 * CA or client certificate without undici's own Agent.
 * @param {string} url
 * @param {{ method?: string, body?: string, timeoutMs: number, tls?: ClientTls }} options
 * @returns {Promise<{ ok: boolean, status: number, text: string }>}
 */
async function httpText(url, { method = 'GET', body, timeoutMs, tls }) {
  if (!tls) {
    const res = await fetch(url, { method, body, signal: AbortSignal.timeout(timeoutMs) });
    return { ok: res.ok, status: res.status, text: await res.text() };
  }
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method, ca: tls.ca, cert: tls.cert, key: tls.key, timeout: timeoutMs }, (res) => {
      const chunks = /** @type {Buffer[]} */ ([]);
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        resolve({ ok: status >= 200 && status < 300, status, text: Buffer.concat(chunks).toString() });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * etcd flags and the health check's client credentials for a TLS client URL.
 * @param {import('./local-etcd.d.mts').EtcdTlsOptions} tls
 * @returns {{ args: string[], client: ClientTls }}
 */
function tlsSetup(tls) {
  const args = ['--cert-file', tls.certFile, '--key-file', tls.keyFile, '--trusted-ca-file', tls.trustedCaFile];
  if (tls.clientCertAuth) args.push('--client-cert-auth');
  const client = {
    ca: readFileSync(tls.trustedCaFile),
    // With --client-cert-auth even /health wants a certificate; without, sending none keeps the check honest.
    ...(tls.clientCertAuth
      ? { cert: readFileSync(tls.clientCertFile ?? tls.certFile), key: readFileSync(tls.clientKeyFile ?? tls.keyFile) }
      : {}),
  };
  return { args, client };
}

/** An address-in-use failure is worth a retry with new ports; anything else is not. */
class PortInUseError extends Error {}

/**
 * One etcd process definition; `start()` spawns it and `waitHealthy()` waits for `/health`.
 * @param {{ name: string, dataDir: string, clientPort: number, peerPort: number, clusterArgs: string[],
 *           extraArgs: string[], logFile?: string, tls?: import('./local-etcd.d.mts').EtcdTlsOptions }} cfg
 * @returns {import('./local-etcd.d.mts').LocalEtcd & { start(): void, waitHealthy(): Promise<void> }}
 */
function defineNode(cfg) {
  const { name, dataDir, clientPort, peerPort } = cfg;
  const tls = cfg.tls ? tlsSetup(cfg.tls) : undefined;
  const endpoint = `${tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  /** @type {import('node:child_process').ChildProcess | undefined} */
  let child;
  /** @type {Promise<void>} resolves when the current child has exited */
  let exited = Promise.resolve();
  /** @type {string[]} */
  let tail = [];

  const args = [
    '--name', name, '--data-dir', dataDir,
    '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
    ...cfg.clusterArgs,
    '--logger', 'zap', '--log-level', 'warn',
    ...(tls?.args ?? []),
    ...cfg.extraArgs,
  ];

  const log = () => tail.join('\n');

  function start() {
    if (child) throw new Error(`etcd ${name} is already running (pid ${child.pid})`);
    tail = [];
    // ETCD_* variables would shadow or conflict with our flags (etcd refuses to start on conflicts).
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')));
    const proc = spawn('etcd', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const file = cfg.logFile ? createWriteStream(cfg.logFile, { flags: 'a' }) : undefined;
    let partial = '';
    const onData = (/** @type {Buffer} */ chunk) => {
      file?.write(chunk);
      const lines = (partial + chunk.toString()).split('\n');
      partial = /** @type {string} */ (lines.pop());
      tail.push(...lines);
      if (tail.length > LOG_TAIL_LINES) tail.splice(0, tail.length - LOG_TAIL_LINES);
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    exited = new Promise((resolve) => {
      proc.once('error', (err) => { tail.push(`spawn etcd failed: ${err.message} (run scripts/ensure-etcd.sh)`); });
      proc.once('close', () => {
        if (partial) tail.push(partial);
        live.delete(proc);
        if (child === proc) child = undefined;
        file?.end();
        resolve();
      });
    });
    if (proc.pid === undefined) return; // spawn failed; 'close' will follow
    child = proc;
    live.add(proc);
    // Do not keep the caller's event loop alive: a test that forgets stop() still exits, and the exit hook kills etcd.
    proc.unref();
    /** @type {any} */ (proc.stdout)?.unref?.();
    /** @type {any} */ (proc.stderr)?.unref?.();
  }

  async function waitHealthy() {
    const proc = child;
    const deadline = Date.now() + HEALTH_TIMEOUT_MS;
    for (;;) {
      if (!proc || child !== proc) {
        await exited;
        const msg = `etcd ${name} exited before becoming healthy:\n${log()}`;
        throw /address already in use/.test(msg) ? new PortInUseError(msg) : new Error(msg);
      }
      try {
        const res = await httpText(`${endpoint}/health`, { timeoutMs: 1_000, tls: tls?.client });
        if (/"health":\s*"true"/.test(res.text) && await answeredByUs()) return;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) {
        await node.kill('SIGKILL');
        throw new Error(`etcd ${name} not healthy at ${endpoint} after ${HEALTH_TIMEOUT_MS / 1000} s:\n${log()}`);
      }
      await sleep(50);
    }
  }

  /** Another etcd may own the port (then ours is about to exit): check the responder has our peer URL. */
  async function answeredByUs() {
    const list = await gateway(endpoint, '/v3/cluster/member/list', {}, 1_000, tls?.client);
    const me = list.members?.find((/** @type {any} */ m) => m.ID === list.header?.member_id);
    return Boolean(me?.peerURLs?.includes(peerUrl));
  }

  /** Send a signal to the running process and wait for it to exit (escalating to SIGKILL after graceMs). */
  async function signalAndWait(/** @type {NodeJS.Signals} */ signal, /** @type {number} */ graceMs) {
    const proc = child;
    if (!proc) return;
    proc.ref(); // keep the loop alive until it is gone
    try { process.kill(/** @type {number} */ (proc.pid), signal); } catch { /* already exiting */ }
    // A SIGSTOPped process keeps SIGTERM pending until it is continued.
    if (signal !== 'SIGKILL') try { process.kill(/** @type {number} */ (proc.pid), 'SIGCONT'); } catch { /* gone */ }
    const timer = setTimeout(() => { try { process.kill(/** @type {number} */ (proc.pid), 'SIGKILL'); } catch { /* gone */ } }, graceMs);
    await exited;
    clearTimeout(timer);
  }

  const node = {
    name, endpoint, clientPort, peerPort, dataDir,
    get pid() { return child?.pid; },
    start,
    waitHealthy,
    stop: () => signalAndWait('SIGTERM', STOP_GRACE_MS),
    kill: (/** @type {NodeJS.Signals} */ signal = 'SIGKILL') => signalAndWait(signal, STOP_GRACE_MS),
    pause() { if (child) process.kill(/** @type {number} */ (child.pid), 'SIGSTOP'); },
    resume() { if (child) process.kill(/** @type {number} */ (child.pid), 'SIGCONT'); },
    async restart() {
      await node.stop();
      start();
      await waitHealthy();
    },
    async destroy() {
      await node.stop();
      await rm(dataDir, { recursive: true, force: true });
      ownedDirs.delete(dataDir);
    },
  };
  return node;
}

async function tempDataDir() {
  const dir = await mkdtemp(join(tmpdir(), 'etcd-test-'));
  ownedDirs.add(dir);
  return dir;
}

/**
 * Start one etcd node on 127.0.0.1 and wait until it is healthy.
 * @param {import('./local-etcd.d.mts').StartEtcdOptions} [options]
 * @returns {Promise<import('./local-etcd.d.mts').LocalEtcd>}
 */
export async function startEtcd(options = {}) {
  const name = options.name ?? 'e1';
  const fixedPorts = options.clientPort !== undefined || options.peerPort !== undefined;
  for (let attempt = 1; ; attempt++) {
    const [cp, pp] = await freePorts(2);
    const clientPort = options.clientPort ?? cp;
    const peerPort = options.peerPort ?? pp;
    const dataDir = options.dataDir ?? await tempDataDir();
    const node = defineNode({
      name, dataDir, clientPort, peerPort, logFile: options.logFile,
      clusterArgs: ['--initial-cluster', `${name}=http://127.0.0.1:${peerPort}`],
      extraArgs: options.extraArgs ?? [],
      tls: options.tls,
    });
    try {
      node.start();
      await node.waitHealthy();
      return stripInternals(node);
    } catch (err) {
      if (!options.dataDir) await node.destroy();
      if (!(err instanceof PortInUseError) || fixedPorts || attempt >= START_ATTEMPTS) throw err;
    }
  }
}

/**
 * Start `size` members e1..eN as one new cluster and wait until every member is healthy.
 * @param {number} [size]
 * @param {import('./local-etcd.d.mts').StartEtcdClusterOptions} [options]
 * @returns {Promise<import('./local-etcd.d.mts').LocalEtcdCluster>}
 */
export async function startEtcdCluster(size = 3, options = {}) {
  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(2 * size);
    const names = Array.from({ length: size }, (_, i) => `e${i + 1}`);
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[2 * i + 1]}`).join(',');
    // On restart etcd reads membership from the data dir and ignores these three flags.
    const clusterArgs = [
      '--initial-cluster', initialCluster,
      '--initial-cluster-token', `t-${randomBytes(6).toString('hex')}`,
      '--initial-cluster-state', 'new',
    ];
    const members = [];
    for (const [i, name] of names.entries()) {
      members.push(defineNode({
        name, dataDir: await tempDataDir(), clientPort: ports[2 * i], peerPort: ports[2 * i + 1], clusterArgs,
        extraArgs: options.extraArgs ?? [],
        logFile: options.logDir ? join(options.logDir, `${name}.log`) : undefined,
      }));
    }
    try {
      for (const m of members) m.start();
      // A member is healthy only once a quorum has elected a leader, so wait for all at once.
      await Promise.all(members.map((m) => m.waitHealthy()));
      return makeCluster(members.map(stripInternals));
    } catch (err) {
      await Promise.all(members.map((m) => m.destroy()));
      if (!(err instanceof PortInUseError) || attempt >= START_ATTEMPTS) throw err;
    }
  }
}

/** @param {import('./local-etcd.d.mts').LocalEtcd[]} members @returns {import('./local-etcd.d.mts').LocalEtcdCluster} */
function makeCluster(members) {
  /** @type {import('./local-etcd.d.mts').LocalEtcdCluster} */
  const cluster = {
    members,
    endpoints: members.map((m) => m.endpoint),
    async leader(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        // The leader is the running member whose own status names itself leader; followers may still
        // name a dead leader for a moment after it died.
        const found = await Promise.any(members.filter((m) => m.pid !== undefined).map(async (m) => {
          const s = await gateway(m.endpoint, '/v3/maintenance/status', {}, 500);
          if (s.leader && s.leader === s.header?.member_id) return m;
          throw new Error('not leader');
        })).catch(() => undefined);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no etcd leader among ${members.map((m) => m.name)} after ${timeoutMs} ms`);
        await sleep(50);
      }
    },
    stopAll,
    async restartAll() {
      await stopAll();
      await Promise.all(members.map((m) => m.restart()));
    },
    async destroy() {
      await stopAll();
      await Promise.all(members.map((m) => m.destroy()));
    },
  };

  // A SIGTERMed leader first tries to hand leadership to a peer it believes alive, waiting up to ~7 s
  // (our SIGKILL comes at 5 s) if that peer is gone. So stop followers first, and give the leader time to
  // mark them inactive (it notices ~50 ms after they exit): then its transfer fails fast with "unhealthy cluster".
  async function stopAll() {
    const lead = await cluster.leader(1_000).catch(() => undefined);
    await Promise.all(members.filter((m) => m !== lead).map((m) => m.stop()));
    if (lead?.pid !== undefined) {
      await sleep(300);
      await lead.stop();
    }
  }
  return cluster;
}

/**
 * Hide start()/waitHealthy() from callers; keep `pid` a live getter.
 * @param {ReturnType<typeof defineNode>} node @returns {import('./local-etcd.d.mts').LocalEtcd}
 */
function stripInternals(node) {
  const { start: _s, waitHealthy: _w, ...pub } = Object.getOwnPropertyDescriptors(node);
  return /** @type {any} */ (Object.defineProperties({}, pub));
}

/**
 * Compact the keyspace to the current revision (physically) and return that revision.
 * @param {string} endpoint e.g. 'http://127.0.0.1:2379'
 * @returns {Promise<number>}
 */
export async function compact(endpoint) {
  const { header } = await gateway(endpoint, '/v3/kv/range', { key: 'AA==' });
  const revision = Number(header.revision);
  try {
    await gateway(endpoint, '/v3/kv/compaction', { revision, physical: true }, 30_000);
  } catch (err) {
    // Already compacted to exactly this revision (no writes since): the goal is met.
    if (!/required revision has been compacted/.test(String(err))) throw err;
  }
  return revision;
}

async function cli() {
  const i = process.argv.indexOf('--cluster');
  const size = i < 0 ? 0 : Number(process.argv[i + 1] ?? 3) || 3;
  const nodes = size ? (await startEtcdCluster(size)) : await startEtcd();
  const members = 'members' in nodes ? nodes.members : [nodes];
  const keepAlive = setInterval(() => {}, 1 << 30);
  console.log(JSON.stringify({
    endpoints: members.map((m) => m.endpoint),
    pids: members.map((m) => m.pid),
    dataDirs: members.map((m) => m.dataDir),
  }));
  const shutdown = async () => {
    clearInterval(keepAlive);
    await nodes.destroy();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  cli().catch((err) => { console.error(err instanceof Error ? err.message : err); process.exit(1); });
}
