import { experimental, logVerbosity, status as Status, type ChannelOptions } from '@grpc/grpc-js';
import { Logger } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import { errorMessage } from '../common/backoff.js';
import { printable } from '../common/printable.js';
import type { InstanceSource } from '../discovery/instance-source.js';
import type { DiscoveryState } from '../discovery/discovery-state.js';
import type { ServiceInstance } from '../discovery/service-instance.js';
import { routeInstances, type InstanceSelector } from './instance-routing.js';
import { instancesOfRoute, REQUEST_ROUTES_OPTION, type RequestRoute } from './request-routes.js';
import { subsetOf } from './subset.js';

const TRACER_NAME = 'etcd_resolver';
export const ETCD_SCHEME = 'etcd';

/**
 * Channel option carrying the instance source. Its prefix keeps it out of subchannel arguments,
 * so channels of one process still share subchannels.
 */
export const INSTANCE_SOURCE_OPTION = `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.nestjs_etcd_discovery.source`;
/** Channel option carrying the client's instance selector (routing before balancing). */
export const INSTANCE_SELECTOR_OPTION = `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.nestjs_etcd_discovery.selector`;
/** Channel option carrying the client's subsetting (`{ size, clientKey }`), if any. */
export const INSTANCE_SUBSET_OPTION = `${experimental.SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.nestjs_etcd_discovery.subset`;

export interface SubsetSetting {
  readonly size: number;
  readonly clientKey: string;
}

const logger = new Logger('EtcdDiscovery');

function trace(text: string): void {
  experimental.trace(logVerbosity.DEBUG, TRACER_NAME, text);
}

/** An instance as a grpc-js endpoint; our extra fields reach custom balancers unchanged. */
export interface DiscoveredEndpoint extends experimental.Endpoint {
  readonly instance: ServiceInstance;
  readonly serviceName: string;
}

/**
 * Resolves `etcd:///<service>` from the process's shared service watcher. It answers
 * asynchronously and only on change (an answer on the same tick makes pick_first spin), and can
 * be destroyed and restarted, replaying the current list, as grpc-js does with idle channels.
 */
class EtcdResolver implements experimental.Resolver {
  private readonly serviceName: string;
  private readonly source?: InstanceSource;
  private readonly selector: InstanceSelector;
  private readonly subset?: SubsetSetting;
  private readonly routes: readonly RequestRoute[];
  private subscription?: Subscription;
  private zoneFallback = false;
  private replaying = false;
  /** Answers waiting for a later turn of the event loop. */
  private deferred = 0;

  constructor(
    target: experimental.GrpcUri,
    private readonly listener: experimental.ResolverListener,
    channelOptions: ChannelOptions,
  ) {
    this.serviceName = target.path.replace(/^\/+/, '');
    this.source = channelOptions[INSTANCE_SOURCE_OPTION] as InstanceSource | undefined;
    this.selector = (channelOptions[INSTANCE_SELECTOR_OPTION] as InstanceSelector | undefined) ?? {};
    this.subset = channelOptions[INSTANCE_SUBSET_OPTION] as SubsetSetting | undefined;
    this.routes = (channelOptions[REQUEST_ROUTES_OPTION] as readonly RequestRoute[] | undefined) ?? [];
    trace(`created for ${this.serviceName}`);
  }

  updateResolution(): void {
    if (this.subscription) return;
    if (!this.source) {
      this.reportError(
        `target etcd:///${this.serviceName} needs a channel made by nestjs-etcd-discovery's ClientFactory`,
      );
      return;
    }
    const prefix = this.source.prefixOf(this.serviceName);
    // The current list is replayed inside subscribe(), so inside grpc-js's updateResolution(): that answer
    // waits for the next turn of the event loop. Later changes come from etcd events, outside any grpc-js
    // call: a microtask hands them over as soon as the event's handler returns, where setImmediate waited
    // behind every other I/O callback of the turn (up to tens of ms under load).
    this.replaying = true;
    this.subscription = this.source.states(this.serviceName).subscribe({
      next: (state) => this.deliver(() => this.reportSafely(state, prefix)),
      error: (error: Error) => this.deliver(() => this.reportError(error.message)),
    });
    this.replaying = false;
  }

  /** Order is kept: while a deferred answer waits, later ones (a list, an error) queue behind it rather than overtake it. */
  private deliver(report: () => void): void {
    if (!this.replaying && this.deferred === 0) return queueMicrotask(report);
    this.deferred += 1;
    setImmediate(() => {
      this.deferred -= 1;
      report();
    });
  }

  destroy(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    trace(`destroyed for ${this.serviceName}`);
  }

  static getDefaultAuthority(target: experimental.GrpcUri): string {
    return target.path.replace(/^\/+/, '');
  }

  /** Whatever a record holds, nothing thrown here may reach grpc-js or the event loop. */
  private reportSafely(state: DiscoveryState, prefix: string): void {
    if (!this.subscription) return;
    try {
      if (state.kind === 'listed') this.report(state.instances, prefix);
      else this.reportError(`service "${this.serviceName}" cannot be listed from etcd under "${prefix}": ${state.reason}`);
    } catch (error) {
      const details = `resolving "${this.serviceName}" failed: ${printable(errorMessage(error))}`;
      logger.error(details);
      this.reportError(details);
    }
  }

  private report(all: readonly ServiceInstance[], prefix: string): void {
    const routed = routeInstances(this.serviceName, all, this.selector);
    this.noteZoneFallback(routed.zoneFallback);
    const instances = this.subset ? this.subsetOf(routed.instances, this.subset) : routed.instances;
    trace(`${this.serviceName}: ${instances.map((instance) => instance.address).join(',') || 'none'}`);
    const endpoints: DiscoveredEndpoint[] = instances.map((instance) => ({
      addresses: [{ host: instance.host, port: instance.port }],
      instance,
      serviceName: this.serviceName,
    }));
    if (endpoints.length > 0) {
      this.listener(experimental.statusOrFromValue(endpoints), {}, null, '');
      return;
    }
    // An empty list first, so the policy drops endpoints that are gone (on an error alone grpc-js
    // keeps routing to them); then an error, so calls fail at once instead of queueing to their deadline.
    const note = routed.note || `no live instance of service "${this.serviceName}" is registered in etcd under "${prefix}"`;
    this.listener(experimental.statusOrFromValue([]), {}, null, note);
    this.deliver(() => {
      if (this.subscription) this.reportError(note);
    });
  }

  /**
   * The client's subset, and one per request route (a route's instances may lie outside the subset of
   * the whole list): at most `size` x (routes + 1) connections.
   */
  private subsetOf(instances: readonly ServiceInstance[], { size, clientKey }: SubsetSetting): readonly ServiceInstance[] {
    const chosen = new Set(subsetOf(instances, size, clientKey));
    for (const route of this.routes) {
      for (const instance of subsetOf(instancesOfRoute(instances, route), size, clientKey)) chosen.add(instance);
    }
    return chosen.size === instances.length ? instances : instances.filter((instance) => chosen.has(instance));
  }

  private noteZoneFallback(fallback: boolean): void {
    if (fallback === this.zoneFallback) return;
    this.zoneFallback = fallback;
    const zone = this.selector.preferredZone;
    logger.log(
      fallback
        ? `${this.serviceName}: no live instance in preferred zone "${zone}"; calling every zone`
        : `${this.serviceName}: preferred zone "${zone}" has live instances again; calling it only`,
    );
  }

  private reportError(details: string): void {
    this.listener(experimental.statusOrFromError({ code: Status.UNAVAILABLE, details }), {}, null, details);
  }
}

let registered = false;

/** Registers the `etcd` scheme with grpc-js (the one copy shared with Nest); safe to call again. */
export function setup(): void {
  if (registered) return;
  experimental.registerResolver(ETCD_SCHEME, EtcdResolver);
  registered = true;
}
