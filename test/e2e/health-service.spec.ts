// The greeter app's grpc.health.v1.Health through a SIGTERM under load: a readiness prober watching it is told
// NOT_SERVING before the port stops taking connections, and no call of a discovering client fails.
import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { HealthClient, type HealthStatus } from '../support/health-client.js';
import { describeExit, epochNow, startGreeters, startLoadClient, uniqueNamespace, useProcesses } from '../support/processes.js';
import { useEtcd } from '../support/use-etcd.js';
import { sleep, sleepUntil, waitFor } from '../support/wait.js';
import { ms, served } from './load-analysis.js';
import { RegistryWatch } from './registry-watch.js';

const TTL_SECONDS = 2;
const LOAD = { ratePerSec: 200, concurrency: 8, delayMs: 5, durationMs: 15_000 };

/** One Check answer (or its error code), and when it arrived. */
interface Poll {
  at: number;
  status?: HealthStatus;
  code?: number;
}

/** Check(`service`) back to back, as a readiness prober would (but often), until stopped. */
function pollCheck(health: HealthClient, service: string): { polls: Poll[]; stop: () => Promise<void> } {
  const polls: Poll[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        polls.push({ status: await health.check(service, 1_000), at: epochNow() });
      } catch (error) {
        polls.push({ code: (error as { code?: number }).code, at: epochNow() });
      }
      await sleep(20);
    }
  })();
  return { polls, stop: () => ((running = false), loop) };
}

/** TCP connects to `port` every 5 ms until one is refused: when the server stopped accepting connections. */
function probeConnects(port: number): { refused: Promise<{ at: number; code: string }>; lastAccepted: () => number | undefined; stop: () => void } {
  let lastAccepted: number | undefined;
  let running = true;
  const refused = new Promise<{ at: number; code: string }>((resolve) => {
    const attempt = () => {
      if (!running) return;
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        lastAccepted = epochNow();
        socket.destroy();
        setTimeout(attempt, 5);
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        running = false;
        resolve({ at: epochNow(), code: error.code ?? error.message });
      });
    };
    attempt();
  });
  return { refused, lastAccepted: () => lastAccepted, stop: () => (running = false) };
}

describe('grpc.health.v1.Health of the greeter app through a SIGTERM under load (etcd, TTL 2 s)', () => {
  const processes = useProcesses();
  const fx = useEtcd({ beforeDestroy: () => processes.endFile() });
  let watch: RegistryWatch | undefined;
  afterAll(() => watch?.close());

  it('Watch and Check say NOT_SERVING from SIGTERM on, before the port refuses connections; Watch ends OK; 0 failed calls', async () => {
    const namespace = uniqueNamespace('health');
    const [survivor, victim] = await startGreeters(processes, 2, { etcd: fx.etcd.endpoint, namespace, ttlSeconds: TTL_SECONDS });
    const client = await startLoadClient(processes, { etcd: fx.etcd.endpoint, namespace });
    watch = await RegistryWatch.open(fx.etcd.endpoint, `${namespace}/greeter/`);
    await client.burst(30, 6); // every client subchannel connected before the clock starts

    const health = new HealthClient(victim.address);
    try {
      const overall = health.watch('');
      const greeter = health.watch('greeter.Greeter');
      await waitFor(() => overall.statuses().join() === 'SERVING' && greeter.statuses().join() === 'SERVING', 5_000, {
        what: 'both Watch streams to start with SERVING',
      });
      const checks = pollCheck(health, 'greeter.Greeter');
      const connects = probeConnects(victim.port);

      const { started } = await client.startLoad(LOAD);
      await sleep(1_000);
      const termAt = epochNow();
      victim.proc.signal('SIGTERM');
      const deleted = watch.waitForDelete(victim.key, 10_000);
      const refused = await connects.refused;
      const exit = await victim.proc.awaitExit(15_000);
      const deletedAt = (await deleted).at;
      const watchEnds = await Promise.all([overall.ended, greeter.ended]);
      await checks.stop();
      await sleepUntil(Math.max(started + 3_000, exit.at + 500), epochNow);
      const load = await client.stopLoad();

      const notServingAt = Math.max(...[overall, greeter].map((stream) => stream.first('NOT_SERVING')?.at ?? Infinity));
      const firstNotServingCheck = checks.polls.find((poll) => poll.status === 'NOT_SERVING');
      const servingAfter = checks.polls.filter((poll) => poll.status === 'SERVING' && poll.at > notServingAt);
      console.log(
        `[health] after SIGTERM: Watch NOT_SERVING ${ms(notServingAt - termAt)}, key deleted ${ms(deletedAt - termAt)}, ` +
          `first Check NOT_SERVING ${firstNotServingCheck ? ms(firstNotServingCheck.at - termAt) : 'never'}, ` +
          `last TCP connect accepted ${ms((connects.lastAccepted() ?? Number.NaN) - termAt)}, first refused ${ms(refused.at - termAt)} (${refused.code}), ` +
          `Watch streams ended ${watchEnds.map((end) => `${ms(end.at - termAt)} code ${end.code}`).join(' / ')}, ` +
          `process exited ${ms(exit.at - termAt)} (${describeExit(exit)}); load calls=${load.calls} failed=${load.failed}, ` +
          `victim served ${served(load.records, victim.address).length}, survivor ${served(load.records, survivor.address).length}; ` +
          `checks ${checks.polls.length}; errors ${JSON.stringify(load.errors)}`,
      );

      expect(overall.statuses()).toEqual(['SERVING', 'NOT_SERVING']);
      expect(greeter.statuses()).toEqual(['SERVING', 'NOT_SERVING']);
      expect(notServingAt).toBeGreaterThan(termAt);
      // The point of it all: the prober knows before a connection is refused.
      expect(refused.code).toBe('ECONNREFUSED');
      expect(notServingAt).toBeLessThan(refused.at);
      expect(firstNotServingCheck, 'a Check answered NOT_SERVING').toBeDefined();
      expect(firstNotServingCheck!.at).toBeLessThan(refused.at);
      // One channel: once the Watch said NOT_SERVING, no Check answer says SERVING again.
      expect(servingAfter).toEqual([]);
      // Shutdown ended the Watch streams with OK (clients retry them) rather than waiting out its deadline.
      for (const end of watchEnds) {
        expect(end.code).toBe(0);
        expect(end.at).toBeLessThan(exit.at);
      }
      expect(victim.proc.output()).not.toContain('in-flight calls cancelled');
      expect(exit.forced).toBe(false);
      expect(exit.signal === 'SIGTERM' || exit.code === 0, describeExit(exit)).toBe(true);
      expect(load.calls).toBeGreaterThan(400);
      expect(load.failed).toBe(0);
    } finally {
      health.close();
    }
  });
});
