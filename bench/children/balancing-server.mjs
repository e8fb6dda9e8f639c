// A Greeter server process of the balancing benchmark, driven over IPC, registered in etcd through the
// package's public entry point (bench/lib/registry.mjs). It serves calls one at a time in arrival order, each
// taking `serviceMs` of a single worker (a server's CPU, say), so its capacity is finite: 1000 / serviceMs calls
// per second. The worker is simulated on a timer schedule fixed at arrival (a call starts when the previous one
// is done), not by burning CPU: the machine's cores stay free for the client, and late timers add latency
// but never cost capacity. `extraDelayMs` is added to every reply without holding the worker (a slow
// dependency): the slow instance answers 20 ms later than the others but can serve as many calls per second.
//   init { hosts, serviceMs, extraDelayMs, metadata }   start the server, register it (metadata added to the
//                                             record's); answers { address, pid }
//   setExtraDelay { ms }                      change the extra delay (the all-fast pool: the slow one made fast)
//   stats {}                                  calls served, mean queueing for the worker, reply timer lateness, CPU used
import { Server, ServerCredentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { GREETER_PROTO, now } from '../lib/common.mjs';
import { serveIpc } from '../lib/processes.mjs';
import { METADATA, loopbackEndpoint, registerInstance } from '../lib/registry.mjs';

const greeterService = loadPackageDefinition(loadSync(GREETER_PROTO)).greeter.Greeter.service;

let server;
let registration;
let address = '';
let serviceMs = 1;
let extraDelayMs = 0;
/** When the simulated worker is free again (ms, machine-wide monotonic clock). */
let busyUntil = 0;
let calls = 0;
let queuedMsTotal = 0;
/** How late reply timers fired, summed: this process's own scheduling delay, added to every call's latency. */
let replyLateMsTotal = 0;
const cpuAtStart = process.cpuUsage();

function sayHello(call, callback) {
  const arrivedAt = now();
  const startsAt = Math.max(arrivedAt, busyUntil);
  busyUntil = startsAt + serviceMs;
  calls += 1;
  queuedMsTotal += startsAt - arrivedAt;
  const dueAt = busyUntil + extraDelayMs;
  setTimeout(() => {
    replyLateMsTotal += Math.max(0, now() - dueAt);
    callback(null, { message: `Hello, ${call.request.name}!`, instanceId: address, address });
  }, dueAt - arrivedAt);
}

const handlers = {
  async init({ hosts, serviceMs: service, extraDelayMs: extra = 0, metadata = {} }) {
    serviceMs = service;
    extraDelayMs = extra;
    server = new Server();
    server.addService(greeterService, { SayHello: sayHello, StreamHellos: (call) => call.end() });
    const port = await new Promise((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
    address = `127.0.0.1:${port}`;
    registration = await registerInstance({ hosts, registration: { serviceName: 'greeter', metadata: { ...METADATA, ...metadata } } }, loopbackEndpoint(port));
    return { address, pid: process.pid };
  },

  async setExtraDelay({ ms }) {
    extraDelayMs = ms;
    return {};
  },

  async stats() {
    const cpu = process.cpuUsage(cpuAtStart);
    return { address, calls, meanQueuedMs: calls > 0 ? queuedMsTotal / calls : 0, meanReplyLateMs: calls > 0 ? replyLateMsTotal / calls : 0, cpuMs: (cpu.user + cpu.system) / 1000 };
  },
};

serveIpc(handlers, async () => {
  await registration?.close();
  await new Promise((resolve) => {
    if (!server) return resolve();
    const timer = setTimeout(() => { server.forceShutdown(); resolve(); }, 1_000);
    server.tryShutdown(() => { clearTimeout(timer); resolve(); });
  });
}).send({ ready: true, pid: process.pid });
