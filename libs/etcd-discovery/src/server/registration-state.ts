/**
 * Where this process's registration is. `lost`: it was registered, and etcd may no longer hold it
 * (lease lost, key taken); it goes back to `registered` by itself. `paused`: out of rotation on
 * purpose (`pause()`), the process still serving. `deregistering` starts the instant shutdown
 * begins, before the keys are removed, so health checks can say NOT_SERVING first.
 */
export type RegistrationState = 'idle' | 'registering' | 'registered' | 'lost' | 'paused' | 'deregistering' | 'deregistered';
