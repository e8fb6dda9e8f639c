// Runs one benchmark body with guaranteed cleanup: deferred steps run last-in-first-out whether the body
// succeeds, throws, or the process is told to stop; then every child still alive is stopped by PID.
import { loadavg } from 'node:os';
import { round, withTimeout } from './common.mjs';
import { stopAllChildren } from './processes.mjs';

export async function runBenchmark(name, body) {
  const startedAt = Date.now();
  const cleanups = [];
  let cleaning;
  const cleanup = () => {
    cleaning ??= (async () => {
      for (const step of cleanups.reverse()) {
        try { await withTimeout(Promise.resolve().then(step), 15_000, `${name} cleanup`); } catch (error) { console.error(String(error)); }
      }
      await stopAllChildren(3_000);
    })();
    return cleaning;
  };
  const onSignal = (signal) => {
    console.error(`${name}: ${signal}, cleaning up`);
    void cleanup().finally(() => process.exit(1));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  // A run.mjs that went away must not leave us running.
  process.once('disconnect', () => onSignal('disconnect'));

  let code = 0;
  try {
    await body({ startedAt, loadAvgAtStart: round(loadavg()[0], 2), defer: (step) => cleanups.push(step) });
  } catch (error) {
    console.error(`\n${name} FAILED: ${error?.stack ?? error}`);
    code = 1;
  }
  await cleanup();
  process.exit(code);
}
