// Open-loop load: calls started on a schedule fixed in advance (Poisson arrivals at a given rate), never
// waiting for earlier calls, never skipping one. Latency runs from each call's SCHEDULED start, so time a call
// spends waiting for the generator (a late timer, a busy event loop) counts against it: no coordinated omission.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { now } from './common.mjs';
import { newHistogram, recordMs, summarize } from './hdr.mjs';

/** mulberry32: a small seeded generator, so every policy of a round can be given the same arrivals. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Start offsets (ms from the run's start) of `calls` Poisson arrivals at `ratePerSec`. */
export function poissonSchedule({ ratePerSec, calls, seed }) {
  const random = seededRandom(seed);
  const offsets = new Float64Array(calls);
  let t = 0;
  for (let i = 0; i < calls; i++) {
    t += (-Math.log(1 - random()) * 1000) / ratePerSec;
    offsets[i] = t;
  }
  return offsets;
}

/**
 * Runs `call()` at every offset of `schedule`; resolves once every call has ended. Returns the latency
 * histogram (successful calls, from the scheduled start), one record per call (for analysis of who served
 * what when), and the generator's own health: how late calls were dispatched, this process's CPU share and
 * its event-loop delay over the run.
 */
export async function openLoop({ schedule, call, serverOf = (reply) => reply.address }) {
  const histogram = newHistogram();
  const dispatchLate = newHistogram();
  const records = new Array(schedule.length);
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  let failed = 0;
  let firstError;
  let ended = 0;
  let maxInFlight = 0;
  const cpuBefore = process.cpuUsage();
  loopDelay.enable();
  const startedAt = now();
  await new Promise((resolve) => {
    let next = 0;
    const finish = () => {
      ended += 1;
      if (ended === schedule.length) resolve();
    };
    const fire = (i) => {
      const scheduledAt = startedAt + schedule[i];
      const sentAt = now();
      recordMs(dispatchLate, sentAt - scheduledAt);
      maxInFlight = Math.max(maxInFlight, i + 1 - ended);
      call().then(
        (reply) => {
          const endedAt = now();
          recordMs(histogram, endedAt - scheduledAt);
          records[i] = { sentAt, endedAt, server: serverOf(reply) };
          finish();
        },
        (error) => {
          failed += 1;
          firstError ??= String(error?.details ?? error?.message ?? error);
          records[i] = { sentAt, endedAt: now(), server: undefined };
          finish();
        },
      );
    };
    const tick = () => {
      const elapsed = now() - startedAt;
      while (next < schedule.length && schedule[next] <= elapsed) fire(next++);
      // A timer shorter than 1 ms fires after 1 ms: calls due meanwhile go out together, each timed from its own slot.
      if (next < schedule.length) setTimeout(tick, Math.max(0, schedule[next] - (now() - startedAt)));
    };
    tick();
  });
  const elapsedMs = now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  loopDelay.disable();
  const ms = (ns) => Math.round(ns / 1e3) / 1e3;
  return {
    histogram,
    records,
    failed,
    firstError,
    elapsedMs,
    offeredPerSec: (schedule.length * 1000) / schedule[schedule.length - 1],
    generator: {
      dispatchLate: summarize(dispatchLate),
      cpuShare: (cpu.user + cpu.system) / 1000 / elapsedMs,
      cpuUsPerCall: (cpu.user + cpu.system) / schedule.length,
      loopDelayP99Ms: ms(loopDelay.percentile(99)),
      loopDelayMaxMs: ms(loopDelay.max),
      maxInFlight,
    },
  };
}
