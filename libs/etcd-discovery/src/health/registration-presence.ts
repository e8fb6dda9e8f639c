import type { EtcdRegistration } from '../server/etcd-registration.js';
import type { RegistrationState } from '../server/registration-state.js';

/**
 * Out of etcd without meaning to. `paused` is an operator's choice, and `deregistering` / `deregistered`
 * is shutdown: the indicator reports those by name, not as an absence to wait out. `idle` counts only
 * in an app that registers something: its server has not announced it yet.
 */
const ABSENT: ReadonlySet<RegistrationState> = new Set(['idle', 'registering', 'lost']);

/** Since when the registration is in its current state (the indicator is made before `register()`). */
export class RegistrationPresence {
  private since = Date.now();

  constructor(private readonly registration: EtcdRegistration) {
    // Completes with the registration (after `deregistered`), so nothing is left to unsubscribe.
    registration.state$.subscribe(() => (this.since = Date.now()));
  }

  get state(): RegistrationState {
    return this.registration.state;
  }

  /** How long the registration has been absent without meaning to; undefined when it is not. */
  absentForMs(now: number): number | undefined {
    return ABSENT.has(this.state) ? now - this.since : undefined;
  }
}
