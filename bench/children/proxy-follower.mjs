// One client of the proxy benchmark: a client-only Nest application context with EtcdDiscoveryModule,
// following services through ClientFactory.instances() (the public API; no channels, no calls). It starts
// following at once (hosts from the command line) and reports when every service lists its instances.
// Over IPC:
//   unfollow { name }        closes a context (what it saw is kept)
//   follow { name, hosts }   another context (the same services) on other hosts: the direct-to-etcd baseline
//   seen {}                  per context: when each key first appeared in and then left its service's list
// The contexts' warnings and errors (a watch that ended, a list that failed) are counted, not printed.
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { ClientFactory, EtcdDiscoveryModule } from 'nestjs-etcd-discovery';
import { now } from '../lib/common.mjs';
import { serveIpc } from '../lib/processes.mjs';

const { namespace, services, perService, hosts } = JSON.parse(process.argv[2]);

/** name -> { app, subscriptions, appeared: Map<key, at>, left: Map<key, at>, problems } */
const contexts = new Map();

/**
 * A Nest logger that counts what the library reports as trouble, by reason (a watch ends with
 * "(disconnected: <kind>: <detail>)"), and keeps the first few lines.
 */
function countingLogger(context) {
  const note = (level) => (message) => {
    const text = String(message);
    context.problems.count += 1;
    const reason = /\((?:disconnected|cancelled): ([^)]*)\)/.exec(text)?.[1] ?? `${level}: ${text.replace(/\/services\/[^ ]*/g, '<prefix>').slice(0, 120)}`;
    context.problems.reasons[reason] = (context.problems.reasons[reason] ?? 0) + 1;
    if (context.problems.first.length < 5) context.problems.first.push(`${level}: ${text.slice(0, 300)}`);
  };
  return { log() {}, debug() {}, verbose() {}, fatal: note('fatal'), error: note('error'), warn: note('warn') };
}

async function follow(name, followHosts) {
  const context = { subscriptions: [], appeared: new Map(), left: new Map(), problems: { count: 0, first: [], reasons: {} }, listErrors: 0 };
  contexts.set(name, context);
  context.app = await NestFactory.createApplicationContext(
    // etcd 3.4's proxy closes connections pinging more than once per 5 minutes (docs/field-notes.md).
    EtcdDiscoveryModule.forRoot({ etcd: { hosts: followHosts, keepaliveIntervalMs: 300_000 }, namespace }),
    { logger: countingLogger(context) },
  );
  const factory = context.app.get(ClientFactory);
  const listed = new Set();
  await new Promise((resolve, reject) => {
    for (const service of services) {
      let previous = new Set();
      context.subscriptions.push(factory.instances(service).subscribe({
        next(list) {
          const at = now();
          const keys = new Set(list.map((instance) => instance.key));
          for (const key of keys) if (!previous.has(key) && !context.appeared.has(key)) context.appeared.set(key, at);
          for (const key of previous) if (!keys.has(key) && !context.left.has(key)) context.left.set(key, at);
          previous = keys;
          if (!listed.has(service) && keys.size >= perService) {
            listed.add(service);
            if (listed.size === services.length) resolve();
          }
        },
        error(error) {
          context.listErrors += 1;
          reject(error);
        },
      }));
    }
  });
}

const handlers = {
  async follow({ name, hosts: followHosts }) {
    const startedAt = now();
    await follow(name, followHosts);
    return { ms: now() - startedAt };
  },

  async unfollow({ name }) {
    const context = contexts.get(name);
    for (const subscription of context.subscriptions) subscription.unsubscribe();
    context.subscriptions = [];
    context.closed = true;
    await context.app.close();
    return {};
  },

  async seen() {
    return {
      contexts: Object.fromEntries([...contexts].map(([name, c]) => [name, {
        appeared: Object.fromEntries(c.appeared),
        left: Object.fromEntries(c.left),
        problems: c.problems,
        listErrors: c.listErrors,
      }])),
      rssBytes: process.memoryUsage().rss,
      heapUsedBytes: process.memoryUsage().heapUsed,
    };
  },
};

const ipc = serveIpc(handlers, async () => {
  for (const context of contexts.values()) {
    if (context.closed) continue;
    for (const subscription of context.subscriptions) subscription.unsubscribe();
    await context.app?.close();
  }
});
const startedAt = now();
follow('proxy', hosts).then(
  () => {
    const cpu = process.cpuUsage();
    ipc.send({ following: true, ms: now() - startedAt, cpuMs: (cpu.user + cpu.system) / 1000, pid: process.pid });
  },
  (error) => ipc.send({ fatal: String(error?.stack ?? error) }),
);
