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
 * response whose metadata holds at least its content-type. A status grpc-js makes up locally carries no
 * metadata but LOCAL_KEYS (see there).
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
            if (status.code === Status.UNAVAILABLE && !fromServer && NO_INSTANCE_DETAILS.test(status.details) && onlyLocalKeys(status.metadata)) {
              metrics.callWithoutInstance();
            }
            nextStatus(status);
          },
        }),
    });
  };
}

/**
 * Keys grpc-js itself adds to a status it made up: its retrying call sets `grpc-previous-rpc-attempts` on the
 * final status of a retried call that got no headers (and on the picker's shared status object, so later calls
 * failed by that picker carry it too).
 */
const LOCAL_KEYS: ReadonlySet<string> = new Set(['grpc-previous-rpc-attempts']);

function onlyLocalKeys(metadata: Metadata): boolean {
  return Object.keys(metadata.getMap()).every((key) => LOCAL_KEYS.has(key));
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
