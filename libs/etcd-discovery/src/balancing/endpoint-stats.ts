import { status as Status } from '@grpc/grpc-js';

/** Time constant of the moving averages (go-zero's decayTime): older samples fade over ~10 s. */
export const DECAY_MS = 10_000;
/**
 * Least weight of a new sample. With time decay alone, at 1,000 calls/s each sample weighs 0.01%:
 * the average is frozen for seconds, and a first call that paid for connection setup makes a fast
 * endpoint look slow for ~10 s. The floor makes it follow within ~10 samples under load.
 */
export const MIN_SAMPLE_WEIGHT = 0.1;
/** An endpoint not picked for this long is picked once anyway, so its stale statistics get refreshed. */
export const FORCE_PICK_MS = 1_000;
const INITIAL_SUCCESS = 1_000;
const HEALTHY_SUCCESS = INITIAL_SUCCESS / 2;
const EJECT_BASE_MS = 1_000;
const EJECT_MAX_MS = 30_000;

/** Codes that say the endpoint, not the request, is in trouble (go-zero's list). Business errors don't count. */
const FAILURE_CODES: ReadonlySet<Status> = new Set([
  Status.DEADLINE_EXCEEDED,
  Status.INTERNAL,
  Status.UNAVAILABLE,
  Status.DATA_LOSS,
  Status.UNIMPLEMENTED,
  Status.RESOURCE_EXHAUSTED,
]);

/**
 * Per-endpoint load statistics for p2c, as go-zero's p2c_ewma keeps them: in-flight calls, a
 * time-decayed latency average and a time-decayed success score. Differences: the load is linear in the
 * latency (see load()), every sample weighs at least MIN_SAMPLE_WEIGHT, UNAVAILABLE ejects the endpoint
 * at once for a growing back-off, and the object outlives membership updates.
 */
export class EndpointStats {
  inflight = 0;
  /** Latency moving average, ms. */
  lagMs = 0;
  success = INITIAL_SUCCESS;
  lastPickedAt = 0;
  private lastCompletedAt = 0;
  private sampled = false;
  private ejectedUntil = 0;
  private consecutiveUnavailable = 0;

  /**
   * What one more call costs here, lower is better: the latency average (ns) times the calls it would join,
   * itself included (the cost of Finagle's, Linkerd's and Envoy's p2c). go-zero takes the square root of the
   * latency: an endpoint 20 ms slower then weighs as much as ~3 calls queued on a 2 ms one, and gets calls the
   * fast one would have answered sooner, often enough to put its 20 ms into the p99 at moderate load.
   */
  load(): number {
    return (this.lagMs * 1e6 + 1) * (this.inflight + 1);
  }

  isHealthy(now: number): boolean {
    return this.success > HEALTHY_SUCCESS && !this.isEjected(now);
  }

  isEjected(now: number): boolean {
    return now < this.ejectedUntil;
  }

  onStarted(): void {
    this.inflight += 1;
  }

  onEnded(code: Status, startedAt: number, now: number): void {
    this.inflight = Math.max(0, this.inflight - 1);
    const sinceLast = Math.max(0, now - this.lastCompletedAt);
    this.lastCompletedAt = now;
    const rtt = Math.max(0, now - startedAt);
    // The first sample replaces the initial values instead of being averaged with them.
    const weight = this.sampled ? Math.min(Math.exp(-sinceLast / DECAY_MS), 1 - MIN_SAMPLE_WEIGHT) : 0;
    this.sampled = true;
    this.lagMs = this.lagMs * weight + rtt * (1 - weight);
    const failed = FAILURE_CODES.has(code);
    this.success = this.success * weight + (failed ? 0 : INITIAL_SUCCESS) * (1 - weight);
    if (code === Status.UNAVAILABLE) {
      // Calls in flight when the endpoint went down all fail together: one ejection, not one per call.
      if (this.isEjected(now)) return;
      this.consecutiveUnavailable += 1;
      this.ejectedUntil = now + Math.min(EJECT_MAX_MS, EJECT_BASE_MS * 2 ** (this.consecutiveUnavailable - 1));
    } else if (!failed) {
      this.consecutiveUnavailable = 0;
    }
  }
}
