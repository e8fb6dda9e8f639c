// Runs one scenario as a test: the body measures and returns its checks; the runner records the result (also
// when the body throws), saves the logs, ends every process, then asserts, so a failure names what did not hold.
import { basename } from 'node:path';
import { it, type ExpectStatic } from 'vitest';
import type { LoadResult } from '../support/processes.js';
import { errorSummary } from './observe.js';
import { recordResult } from './results.js';
import { Scenario, type Check, type Outcome, type ScenarioDefinition } from './scenario.js';

/**
 * The test body for one scenario: runs it, records its result (also when it throws), cleans up, then asserts
 * every check so a failure names what did not hold.
 */
export function scenario(definition: ScenarioDefinition, body: (s: Scenario) => Promise<Outcome>) {
  return async ({ expect }: { expect: ExpectStatic }): Promise<void> => {
    const s = new Scenario(definition);
    let outcome: Outcome | undefined;
    let thrown: unknown;
    try {
      outcome = await body(s);
    } catch (error) {
      thrown = error;
    }
    const failedChecks = outcome ? outcome.checks.filter((check) => !check.ok).map((check) => check.what) : [];
    if (thrown) failedChecks.push(`scenario error: ${thrown instanceof Error ? thrown.message.split('\n')[0] : String(thrown)}`);
    const pass = outcome !== undefined && !thrown && failedChecks.length === 0;
    recordResult({
      file: basename(expect.getState().testPath ?? 'unknown'),
      startedAt: s.startedAt,
      finishedAt: Date.now(),
      name: definition.name,
      calls: outcome?.calls ?? null,
      failed: outcome?.failed ?? null,
      allowedFailed: outcome?.allowedFailed ?? null,
      registrationsLost: outcome?.registrationsLost ?? null,
      recoveryMs: outcome?.recoveryMs === null || outcome?.recoveryMs === undefined ? null : Math.round(outcome.recoveryMs),
      pass,
      bound: definition.bound,
      details: outcome?.details ?? '',
      failedChecks,
    });
    const logs = s.saveLogs();
    await s.close();
    console.log(`[${definition.name}] ${pass ? 'PASS' : 'FAIL'}: ${outcome?.details ?? ''}${pass ? '' : `\n  logs: ${logs}\n${s.timelineText()}`}`);
    if (thrown) throw thrown;
    expect(failedChecks, `${definition.name}: checks that failed (logs in ${logs})`).toEqual([]);
  };
}

/** For scenarios that wait out several TTLs or outages in a row (the default is 120 s). */
export const LONG_SCENARIO_TIMEOUT_MS = 150_000;

/** Declares the scenario as a test named after it (inside describe.concurrent it runs beside the file's others). */
export function scenarioTest(definition: ScenarioDefinition, body: (s: Scenario) => Promise<Outcome>, timeoutMs = 120_000): void {
  it(definition.name, scenario(definition, body), timeoutMs);
}

/** A check with its measured value in the text. */
export function check(what: string, ok: boolean): Check {
  return { what, ok };
}

/** The check every scenario under steady load makes. */
export function noFailedCalls(load: LoadResult): Check {
  return check(`0 failed calls (got ${load.failed}: ${errorSummary(load.records)})`, load.failed === 0);
}

/** The outcome of a scenario whose calls are `load`'s: none may fail unless `allowedFailed` says otherwise. */
export function outcomeOf(
  load: LoadResult,
  rest: Omit<Outcome, 'calls' | 'failed' | 'allowedFailed' | 'recoveryMs'> & { allowedFailed?: number; recoveryMs?: number | null },
): Outcome {
  return { calls: load.calls, failed: load.failed, allowedFailed: 0, ...rest, recoveryMs: rest.recoveryMs ?? null };
}
