// A plain grpc-js Greeter server (the greeter app's proto) for benchmarks that need many cheap instances in
// one process: it replies with its own address, after `delayMs`, and keeps the time of every call received.
import { Server, ServerCredentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { GREETER_PROTO, now } from './common.mjs';

const greeterPackage = loadPackageDefinition(loadSync(GREETER_PROTO)).greeter;
const greeterService = greeterPackage.Greeter.service;
/** A plain grpc-js Greeter client class (no Nest), for connection baselines. */
export const GreeterClient = greeterPackage.Greeter;

export async function startGreeterServer({ delayMs = 0, host = '127.0.0.1' } = {}) {
  const server = new Server();
  const state = { port: 0, address: '', delayMs, calls: 0, firstCallAt: undefined, lastCallAt: undefined };
  server.addService(greeterService, {
    SayHello(call, callback) {
      const at = now();
      state.calls += 1;
      state.firstCallAt ??= at;
      state.lastCallAt = at;
      const reply = () => callback(null, { message: `Hello, ${call.request.name}!`, instanceId: state.address, address: state.address });
      const delay = state.delayMs + (call.request.delayMs ?? 0);
      if (delay > 0) setTimeout(reply, delay);
      else reply();
    },
    StreamHellos(call) {
      call.end();
    },
  });
  state.port = await new Promise((resolve, reject) =>
    server.bindAsync(`${host}:0`, ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  );
  state.address = `${host}:${state.port}`;
  return {
    state,
    get port() { return state.port; },
    get address() { return state.address; },
    /** Graceful shutdown, forced after `graceMs`. */
    shutdown(graceMs = 1_000) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => { server.forceShutdown(); resolve(); }, graceMs);
        server.tryShutdown(() => { clearTimeout(timer); resolve(); });
      });
    },
  };
}
