import { Logger } from '@nestjs/common';
import type { Etcd3 } from 'etcd3';
import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import { sleep } from '../common/backoff.js';
import type { ResolvedDiscoveryOptions } from '../options/resolved-options.js';
import { LeaseKeeper } from '../registry/lease-keeper.js';
import { Registrar, type RegisteredInstance, type ServingEndpoint } from '../registry/registrar.js';
import { newInstanceId } from '../registry/registry-keys.js';
import type { RegistrationState } from './registration-state.js';

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

  get isRegistered(): boolean {
    return this.registrar?.isRegistered ?? false;
  }

  /** Leases granted by this process so far (1 unless a lease was lost). */
  get leasesGranted(): number {
    return this.keeper?.grantCount ?? 0;
  }

  /** Starts registration in the background; etcd being unreachable delays it, never fails the app. */
  register(endpoint: ServingEndpoint): void {
    if (this.options.registrations.length === 0) {
      throw new Error(
        'nestjs-etcd-discovery: the gRPC server uses withEtcdDiscovery() but EtcdDiscoveryModule has no ' +
          '"registration" option; add registration: { serviceName: "<name>" } to forRoot()',
      );
    }
    if (this.registrar) throw new Error('nestjs-etcd-discovery: this process is already registered');
    this.keeper = new LeaseKeeper(this.client, this.options.server.ttlSeconds, this.logger);
    this.registrar = new Registrar(this.client, this.keeper, this.options.namespace, this.instanceId, this.logger);
    this.setState('registering');
    this.registrar.onRegisteredChange((registered) => {
      if (this.state === 'deregistering' || this.state === 'deregistered') return;
      this.setState(registered ? 'registered' : 'lost');
    });
    this.registrar.start(this.options.registrations, endpoint);
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

  private setState(state: RegistrationState): void {
    if (!this.stateSubject.closed) this.stateSubject.next(state);
  }
}
