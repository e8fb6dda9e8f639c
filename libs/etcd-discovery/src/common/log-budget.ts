/**
 * At most `perWindow` lines per `windowMs`, then one summary line when the window ends: whoever
 * writes the registry must not be able to flood a client's log (every write a membership change,
 * a million garbage keys), while a quiet system still logs every event.
 */
export class LogBudget {
  private windowStart = -Infinity;
  private used = 0;
  private suppressed = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly perWindow: number,
    private readonly windowMs: number,
    /** Logs the summary of what the window suppressed, e.g. `37 more lines`. */
    private readonly summarize: (suppressed: number) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Logs `line` through `write` if the budget allows; otherwise counts it for the summary. */
  spend(write: () => void): void {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      this.flush();
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used < this.perWindow) {
      this.used += 1;
      write();
      return;
    }
    this.suppressed += 1;
    this.timer ??= setTimeout(() => this.flush(), this.windowStart + this.windowMs - now).unref();
  }

  /** Reports what is still suppressed and stops the timer. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.suppressed === 0) return;
    const count = this.suppressed;
    this.suppressed = 0;
    this.summarize(count);
  }
}
