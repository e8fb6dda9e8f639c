import { Logger } from '@nestjs/common';
import type { Etcd3 } from 'etcd3';
import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import { sleep } from '../common/backoff.js';
import { printable } from '../common/printable.js';
import { validateMetadata } from '../options/validate-options.js';
import type { ResolvedDiscoveryOptions } from '../options/resolved-options.js';
import { LeaseKeeper } from '../registry/lease-keeper.js';
import { Registrar, type RegisteredInstance, type ServingEndpoint } from '../registry/registrar.js';
import { newInstanceId } from '../registry/registry-keys.js';
import type { RegistrationState } from './registration-state.js';

const NO_REGISTRATION =
  'nestjs-etcd-discovery: EtcdDiscoveryModule has no "registration" option; add registration: { serviceName: "<name>" } ' +
  'to forRoot() (withEtcdDiscovery() and EtcdRegistration need it)';

/** Deregistration must not hang shutdown when etcd is gone: the lease expires the keys anyway. */
const DEREGISTER_TIMEOUT_MS = 3_000;

/**
 * This process's presence in etcd, driven by the gRPC server strategy: announced once the server
 * can serve, withdrawn (then drained) before it closes. Injectable, so apps can read the instance
 * id or wait for registration in a health check.
 */
export class EtcdRegistration {
  readonly instanceId = newInstanceId();
  private readonly logger = new Logger('EtcdRegistration');
  private registrar?: Registrar;
  private keeper?: LeaseKeeper;
  private withdrawing?: Promise<void>;
  /** Metadata changed by update(), by service; the options' metadata otherwise. */
  private readonly metadata = new Map<string, Readonly<Record<string, unknown>>>();
  private readonly stateSubject = new BehaviorSubject<RegistrationState>('idle');
  /** The registration's state, current value first, then every change. Completes after `deregistered`. */
  readonly state$: Observable<RegistrationState> = this.stateSubject.pipe(distinctUntilChanged());

  constructor(
    private readonly client: Etcd3,
    private readonly options: ResolvedDiscoveryOptions,
  ) {}

  get instances(): readonly RegisteredInstance[] {
    return this.registrar?.instances ?? [];
  }

  /** How long the server's graceful shutdown waits for in-flight calls (`server.shutdownTimeoutMs`): all server timing lives here. */
  get shutdownTimeoutMs(): number {
    return this.options.server.shutdownTimeoutMs;
  }

  get state(): RegistrationState {
    return this.stateSubject.value;
  }

  /** Lease timing, drain and health-service settings (`server.*`): every server-side timing lives here. */
  get serverOptions(): ResolvedDiscoveryOptions['server'] {
    return this.options.server;
  }

  /** The live lease's id, undefined before the first grant and while a lost lease is being replaced. */
  get leaseId(): string | undefined {
    return this.keeper?.currentId;
  }

  /** When etcd last answered this process's lease keepalive, in ms since the epoch. */
  get lastKeepaliveAt(): number | undefined {
    return this.keeper?.lastKeepaliveAt;
  }

  get isRegistered(): boolean {
    return this.registrar?.isRegistered ?? false;
  }

  /** Leases granted by this process so far (1 unless a lease was lost). */
  get leasesGranted(): number {
    return this.keeper?.grantCount ?? 0;
  }

  /** Starts registration in the background; etcd being unreachable delays it, never fails the app. */
  register(endpoint: ServingEndpoint): void {
    if (this.options.registrations.length === 0) throw new Error(NO_REGISTRATION);
    if (this.registrar) throw new Error('nestjs-etcd-discovery: this process is already registered');
    this.keeper = new LeaseKeeper(this.client, this.options.server.ttlSeconds, this.logger);
    this.registrar = new Registrar(this.client, this.keeper, this.options.namespace, this.instanceId, this.logger);
    const paused = this.state === 'paused';
    if (!paused) this.setState('registering');
    this.registrar.onRegisteredChange((registered) => {
      if (this.state === 'paused' || this.state === 'deregistering' || this.state === 'deregistered') return;
      this.setState(registered ? 'registered' : 'lost');
    });
    const registrations = this.options.registrations.map((registration) => ({ ...registration, metadata: this.metadataOf(registration.serviceName) }));
    this.registrar.start(registrations, endpoint, paused);
  }

  /**
   * Changes the metadata of the running registration (all of this process's services, or the one
   * named): fields given replace the same fields, a field given as `undefined` is removed, the rest
   * stay. Clients see the new record through their watch; the address is unchanged, so connections
   * and p2c statistics are kept. Validated as the `registration.metadata` option is (a bad value
   * rejects with InvalidDiscoveryOptionsError, nothing written). Resolves once etcd holds the
   * update (at once while paused or before the server started: it is written when registering).
   */
  async update(metadata: Record<string, unknown>, options: { serviceName?: string } = {}): Promise<void> {
    this.assertRunning('update()');
    const services = this.servicesNamed(options.serviceName);
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      validateMetadata('update(metadata)', metadata);
    }
    const merged = new Map<string, Record<string, unknown>>();
    for (const service of services) {
      const next: Record<string, unknown> = { ...this.metadataOf(service), ...metadata };
      for (const [field, value] of Object.entries(metadata)) if (value === undefined) delete next[field];
      merged.set(service, validateMetadata('update(metadata)', next));
    }
    for (const [service, next] of merged) this.metadata.set(service, next);
    await this.registrar?.update(new Set(services), (record) => this.metadataOf(record.serviceName));
  }

  /**
   * Takes this process out of rotation without stopping it: its records leave etcd (clients stop
   * sending new calls; calls in flight finish) while the lease and the server stay up, and the
   * gRPC health service reports NOT_SERVING. Resolves once the records are gone from etcd.
   */
  async pause(): Promise<void> {
    this.assertRunning('pause()');
    this.servicesNamed(undefined);
    this.setState('paused');
    await this.registrar?.pause();
  }

  /** Puts the records back after `pause()`; resolves once etcd holds them again. */
  async resume(): Promise<void> {
    this.assertRunning('resume()');
    if (this.state !== 'paused') return;
    if (!this.registrar) {
      this.setState('idle');
      return;
    }
    this.setState(this.registrar.isRegistered ? 'registered' : 'registering');
    await this.registrar.resume();
  }

  whenRegistered(): Promise<void> {
    if (!this.registrar) return Promise.reject(new Error('nestjs-etcd-discovery: register() has not been called'));
    return this.registrar.whenRegistered();
  }

  /**
   * Removes the registration, then waits the drain delay so every client's watch sees the removal
   * before connections close. Runs once, whoever calls first.
   */
  withdraw(): Promise<void> {
    this.withdrawing ??= this.runWithdraw();
    return this.withdrawing;
  }

  private async runWithdraw(): Promise<void> {
    const registrar = this.registrar;
    if (!registrar) return;
    const wasRegistered = registrar.isRegistered;
    this.setState('deregistering');
    await registrar.stop(DEREGISTER_TIMEOUT_MS);
    this.setState('deregistered');
    this.stateSubject.complete();
    if (wasRegistered && this.options.server.drainDelayMs > 0) await sleep(this.options.server.drainDelayMs);
  }

  private metadataOf(serviceName: string): Readonly<Record<string, unknown>> {
    return this.metadata.get(serviceName) ?? this.options.registrations.find((registration) => registration.serviceName === serviceName)?.metadata ?? {};
  }

  /** The services an update applies to: the one named, or every one this process registers. */
  private servicesNamed(serviceName: string | undefined): string[] {
    const all = this.options.registrations.map((registration) => registration.serviceName);
    if (all.length === 0) throw new Error(NO_REGISTRATION);
    if (serviceName === undefined) return all;
    if (!all.includes(serviceName)) {
      throw new Error(`nestjs-etcd-discovery: this process does not register "${printable(String(serviceName))}"; it registers ${all.map((name) => `"${name}"`).join(', ')}`);
    }
    return [serviceName];
  }

  private assertRunning(method: string): void {
    if (this.state === 'deregistering' || this.state === 'deregistered') {
      throw new Error(`nestjs-etcd-discovery: ${method} after shutdown began; the registration is being withdrawn`);
    }
  }

  private setState(state: RegistrationState): void {
    if (!this.stateSubject.closed) this.stateSubject.next(state);
  }
}
