import { InterceptingCall, status as Status, type ChannelOptions, type Interceptor, type Metadata } from '@grpc/grpc-js';
import { ClientMetrics, metricsEnabled } from './telemetry.js';

/**
 * What the etcd resolver and our policies write when they have no instance for a call (grpc-js hands it
 * to the call as is, or after "No addresses resolved. Resolution note: "): none registered, none
 * matching the client's selector or request route, or etcd not listed yet.
 */
const NO_INSTANCE_DETAILS = /no live instance|none matching selector|cannot be listed from etcd/;

/**
 * Counts calls of one client that failed because discovery had no instance for them. A client
 * interceptor sees every call whatever the policy (grpc-js's round_robin and pick_first included);
 * without an SDK it steps aside at once, allocating nothing.
 *
 * Only calls that never heard from a server count: a server relaying such an error of its own (a Nest
 * service calling another through this library) answers with response headers, or with a Trailers-Only
 * response whose metadata holds at least its content-type; a status grpc-js makes up locally carries
 * neither.
 */
export function countCallsWithoutInstance(serviceName: string): Interceptor {
  const metrics = new ClientMetrics(serviceName);
  return (options, nextCall) => {
    // The chain only calls the interface's methods: handing back the next call adds nothing per call.
    if (!metricsEnabled()) return nextCall(options) as InterceptingCall;
    let fromServer = false;
    return new InterceptingCall(nextCall(options), {
      start: (metadata, _listener, next) =>
        next(metadata, {
          onReceiveMetadata: (headers, nextHeaders) => {
            fromServer = true;
            nextHeaders(headers);
          },
          onReceiveStatus: (status, nextStatus) => {
            if (status.code === Status.UNAVAILABLE && !fromServer && NO_INSTANCE_DETAILS.test(status.details) && isEmpty(status.metadata)) {
              metrics.callWithoutInstance();
            }
            nextStatus(status);
          },
        }),
    });
  };
}

function isEmpty(metadata: Metadata): boolean {
  return Object.keys(metadata.getMap()).length === 0;
}

/**
 * The channel options' interceptors with ours added: grpc-js refuses a client given both
 * `interceptors` and `interceptor_providers`, so ours joins whichever the user set.
 */
export function withCallCounting(serviceName: string, channelOptions: ChannelOptions | undefined): ChannelOptions {
  const interceptor = countCallsWithoutInstance(serviceName);
  const providers = channelOptions?.interceptor_providers as (() => Interceptor)[] | undefined;
  if (providers !== undefined) return { interceptor_providers: [...providers, () => interceptor] };
  return { interceptors: [...((channelOptions?.interceptors as Interceptor[] | undefined) ?? []), interceptor] };
}
