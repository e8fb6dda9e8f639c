// The greeter app's proto: the one path every test that speaks Greeter loads, and one SayHello straight to an
// address (no discovery), for checking that a process serves before or apart from etcd.
import { fileURLToPath } from 'node:url';
import { credentials, loadPackageDefinition, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

export const GREETER_PROTO_PATH = fileURLToPath(new URL('../../apps/greeter/proto/greeter.proto', import.meta.url));

/** The generated `greeter.Greeter` client class; its `.service` is the definition a server adds. */
export function loadGreeter(options?: Options): ServiceClientConstructor {
  const greeterPackage = loadPackageDefinition(loadSync(GREETER_PROTO_PATH, options)).greeter as GrpcObject;
  return greeterPackage.Greeter as ServiceClientConstructor;
}

export interface HelloReply {
  message: string;
  instanceId: string;
  address: string;
}

type UnaryCallback = (error: ServiceError | null, reply?: HelloReply) => void;

/** One SayHello straight to `address` with grpc-js; rejects with the call's error. */
export async function helloDirect(address: string, deadlineMs = 5_000): Promise<HelloReply> {
  const Greeter = loadGreeter();
  // No HTTP proxy from the environment: the call stays on loopback.
  const client = new Greeter(address, credentials.createInsecure(), { 'grpc.enable_http_proxy': 0 });
  const sayHello = client.SayHello.bind(client) as (request: { name: string }, options: { deadline: number }, callback: UnaryCallback) => void;
  try {
    return await new Promise<HelloReply>((resolve, reject) =>
      sayHello({ name: 'direct' }, { deadline: Date.now() + deadlineMs }, (error, reply) => (error ? reject(error) : resolve(reply!))),
    );
  } finally {
    client.close();
  }
}
