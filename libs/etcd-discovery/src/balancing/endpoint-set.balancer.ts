import { connectivityState as ConnectivityState, experimental, type ChannelOptions } from '@grpc/grpc-js';
import { telemetry } from '../telemetry/index.js';
import { describeRoute, endpointsOfRoute, REQUEST_ROUTES_OPTION, RoutingPicker, type RequestRoute } from './request-routes.js';

/** A connected endpoint as a picker sees it. */
export interface ReadyEndpoint {
  /** The endpoint's address text, stable across membership updates. */
  readonly key: string;
  readonly endpoint: experimental.Endpoint;
  readonly picker: experimental.Picker;
  /** Where a policy reports that it picked this endpoint. */
  readonly metrics: telemetry.EndpointMetrics;
}

/**
 * What our policies share with grpc-js's round_robin: one leaf (pick_first) child per endpoint,
 * kept connected, and a channel state aggregated from the children. Unlike round_robin, children
 * are kept across membership updates by address, so a connection and the state a policy keeps for
 * it survive an update that did not remove it. Subclasses only build the picker.
 */
export abstract class EndpointSetBalancer implements experimental.LoadBalancer {
  private children = new Map<string, experimental.LeafLoadBalancer>();
  private currentState = ConnectivityState.IDLE;
  private lastError: string | null = null;
  private emptyMessage = 'No addresses resolved';
  private updatesPaused = false;
  private routes: readonly RequestRoute[] = [];
  private readonly childHelper: experimental.ChannelControlHelper;

  constructor(protected readonly helper: experimental.ChannelControlHelper) {
    this.childHelper = experimental.createChildChannelControlHelper(helper, {
      updateState: (state, _picker, errorMessage) => {
        // As round_robin: a dropped connection asks the resolver for news.
        if (this.currentState === ConnectivityState.READY && state !== ConnectivityState.READY) helper.requestReresolution();
        if (errorMessage) this.lastError = errorMessage;
        this.recompute();
      },
    });
  }

  abstract getTypeName(): string;

  /** Takes the config if it is this policy's; false makes grpc-js report a config mismatch. */
  protected abstract acceptConfig(config: experimental.TypedLoadBalancingConfig): boolean;

  protected abstract createPicker(ready: readonly ReadyEndpoint[]): experimental.Picker;

  /** Called with the addresses present after every update, e.g. to forget state of removed ones. */
  protected onMembership(_keys: ReadonlySet<string>): void {}

  updateAddressList(
    endpoints: experimental.StatusOr<experimental.Endpoint[]>,
    config: experimental.TypedLoadBalancingConfig,
    options: ChannelOptions,
    resolutionNote: string,
  ): boolean {
    if (!this.acceptConfig(config)) return false;
    this.routes = (options[REQUEST_ROUTES_OPTION] as readonly RequestRoute[] | undefined) ?? [];
    if (!endpoints.ok) {
      if (this.children.size === 0) {
        this.updateState(ConnectivityState.TRANSIENT_FAILURE, new experimental.UnavailablePicker(endpoints.error), endpoints.error.details);
      }
      return true;
    }
    this.updatesPaused = true;
    const next = new Map<string, experimental.LeafLoadBalancer>();
    for (const endpoint of endpoints.value) {
      const key = experimental.endpointToString(endpoint);
      const existing = this.children.get(key);
      if (existing) {
        existing.updateEndpoint(endpoint, options);
        this.children.delete(key);
        next.set(key, existing);
      } else {
        const leaf = new experimental.LeafLoadBalancer(endpoint, this.childHelper, options, resolutionNote);
        next.set(key, leaf);
        leaf.startConnecting();
      }
    }
    for (const removed of this.children.values()) removed.destroy();
    this.children = next;
    this.updatesPaused = false;
    this.onMembership(new Set(next.keys()));
    this.emptyMessage = `No addresses resolved. Resolution note: ${resolutionNote}`;
    this.recompute();
    return true;
  }

  exitIdle(): void {
    for (const child of this.children.values()) child.exitIdle();
  }

  resetBackoff(): void {}

  destroy(): void {
    for (const child of this.children.values()) child.destroy();
    this.children.clear();
  }

  private recompute(): void {
    if (this.updatesPaused) return;
    if (this.children.size === 0) {
      // Fail calls at once rather than queue them while nothing can serve.
      this.updateState(ConnectivityState.TRANSIENT_FAILURE, new experimental.UnavailablePicker({ details: this.emptyMessage }), this.emptyMessage);
      return;
    }
    const ready: ReadyEndpoint[] = [];
    let connecting = false;
    let failing = false;
    for (const [key, child] of this.children) {
      const state = child.getConnectivityState();
      if (state === ConnectivityState.READY) ready.push({ key, endpoint: child.getEndpoint(), picker: child.getPicker(), metrics: telemetry.EndpointMetrics.of(child.getEndpoint()) });
      else if (state === ConnectivityState.CONNECTING) connecting = true;
      else if (state === ConnectivityState.TRANSIENT_FAILURE) failing = true;
    }
    if (ready.length > 0) {
      this.updateState(ConnectivityState.READY, this.routedPicker(ready), null);
    } else if (connecting) {
      this.updateState(ConnectivityState.CONNECTING, new experimental.QueuePicker(this), null);
    } else if (failing) {
      const message = `${this.getTypeName()}: no connection established. Last error: ${this.lastError}`;
      this.updateState(ConnectivityState.TRANSIENT_FAILURE, new experimental.UnavailablePicker({ details: message }), message);
    } else {
      this.updateState(ConnectivityState.IDLE, new experimental.QueuePicker(this), null);
    }
    // Keep every endpoint connected, as round_robin does.
    for (const child of this.children.values()) {
      if (child.getConnectivityState() === ConnectivityState.IDLE) child.exitIdle();
    }
  }

  /** The policy's picker over every ready endpoint, and one per request route over the endpoints it selects. */
  private routedPicker(ready: readonly ReadyEndpoint[]): experimental.Picker {
    const all = this.createPicker(ready);
    if (this.routes.length === 0) return all;
    const targets = this.routes.map((route, index) => {
      const selected = endpointsOfRoute(ready, route);
      if (selected.length > 0) return this.createPicker(selected);
      // Matching endpoints still connecting: wait for them rather than fall back.
      const connecting = [...this.children.values()].filter((child) => child.getConnectivityState() !== ConnectivityState.TRANSIENT_FAILURE);
      if (endpointsOfRoute(connecting.map((child) => ({ endpoint: child.getEndpoint() })), route).length > 0) return new experimental.QueuePicker(this);
      return route.fallback === 'all' ? all : new experimental.UnavailablePicker({ details: `no live instance matches ${describeRoute(route, index)}` });
    });
    return new RoutingPicker(this.routes, targets, all);
  }

  private updateState(state: ConnectivityState, picker: experimental.Picker, errorMessage: string | null): void {
    this.currentState = state;
    this.helper.updateState(state, picker, errorMessage);
  }
}
