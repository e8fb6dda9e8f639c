/**
 * Share of a process's time that rebuilding instance lists may take, across every service it follows. A
 * per-service limit alone let writers churning four large services keep a client's event loop busy for
 * seconds, delaying a quiet service's changes (and every call) behind them.
 */
const REBUILD_SHARE = 0.25;

/**
 * Paces list rebuilds across the services of one hub: after a rebuild that took d ms, the next may start
 * d x (1 / share - 1) ms later. A quiet system never waits: a rebuild of 1 ms defers the next by 3 ms.
 */
export class RebuildPacer {
  private busyUntil = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** How long a rebuild asked for now must wait. */
  waitMs(): number {
    return Math.max(0, this.busyUntil - this.now());
  }

  /** Runs `rebuild` and accounts for its time. */
  run<T>(rebuild: () => T): T {
    const startedAt = this.now();
    try {
      return rebuild();
    } finally {
      const took = this.now() - startedAt;
      this.busyUntil = Math.max(this.busyUntil, startedAt) + took + took * (1 / REBUILD_SHARE - 1);
    }
  }
}
