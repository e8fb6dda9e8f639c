import { experimental, type Metadata } from '@grpc/grpc-js';
import type { ServiceInstance } from '../discovery/service-instance.js';
import { routeInstances, type InstanceSelector } from './instance-routing.js';

/**
 * Routing per call, from the call's metadata (Kratos-style canary and colouring): the first route whose
 * `header` matches sends the call to the instances its `select` picks, balanced by the client's policy.
 */
export interface RequestRoute {
  /** Call metadata entry (lower-case) that triggers the route; omitted, the route matches every call (a default). */
  readonly header?: string;
  /** Values of `header` that match; omitted, any value does. */
  readonly equals?: string | readonly string[];
  /** The instances matching calls may reach: metadata, semver range, preferred zone (as the client's `select`). */
  readonly select: InstanceSelector;
  /**
   * When no live instance matches: `'fail'` fails the call with UNAVAILABLE naming the route, `'all'` sends
   * it to any instance the client may call.
   * @default 'fail'
   */
  readonly fallback?: 'fail' | 'all';
}

/** Channel option carrying the client's routes, excluded from subchannel arguments like the selector. */
export const REQUEST_ROUTES_OPTION = `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.nestjs_etcd_discovery.routes`;

export function routeMatches(route: RequestRoute, metadata: Metadata): boolean {
  if (route.header === undefined) return true;
  const values = metadata.get(route.header);
  if (values.length === 0) return false;
  if (route.equals === undefined) return true;
  const accepted: readonly string[] = typeof route.equals === 'string' ? [route.equals] : route.equals;
  return values.some((value) => typeof value === 'string' && accepted.includes(value));
}

export function describeRoute(route: RequestRoute, index: number): string {
  const when = route.header === undefined ? 'every call' : `${route.header}${route.equals === undefined ? '' : `=${[route.equals].flat().join('|')}`}`;
  return `route ${index} (${when} -> ${JSON.stringify(route.select)})`;
}

/**
 * Sends each call to the picker of the first matching route (its instances, its fallback, or a queue while
 * they connect); calls no route matches use `all`. Matching a call is a few metadata lookups.
 */
export class RoutingPicker implements experimental.Picker {
  constructor(
    private readonly routes: readonly RequestRoute[],
    private readonly targets: readonly experimental.Picker[],
    private readonly all: experimental.Picker,
  ) {}

  pick(args: experimental.PickArgs): experimental.PickResult {
    for (let index = 0; index < this.routes.length; index++) {
      if (routeMatches(this.routes[index], args.metadata)) return this.targets[index].pick(args);
    }
    return this.all.pick(args);
  }
}

/** The endpoints among `endpoints` that a route's selector picks (zone preference included), in order. */
export function endpointsOfRoute<T extends { readonly endpoint: experimental.Endpoint }>(endpoints: readonly T[], route: RequestRoute): T[] {
  const byInstance = new Map<ServiceInstance, T>();
  for (const endpoint of endpoints) {
    const instance = (endpoint.endpoint as { instance?: ServiceInstance }).instance;
    if (instance) byInstance.set(instance, endpoint);
  }
  return instancesOfRoute([...byInstance.keys()], route).map((instance) => byInstance.get(instance)!);
}

/** The instances among `instances` that a route's selector picks (zone preference included), in order. */
export function instancesOfRoute(instances: readonly ServiceInstance[], route: RequestRoute): readonly ServiceInstance[] {
  return routeInstances('', instances, route.select).instances;
}
