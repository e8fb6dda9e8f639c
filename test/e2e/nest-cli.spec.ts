// The Nest CLI on this monorepo, as a newcomer types it: `npx nest build greeter`, `npx nest build gateway`
// and `nest start gateway` (nest-cli.json, tsc builder). Each build goes to a temp outDir through `-p` (a
// tsconfig that extends the app's own), because other test files run apps/*/dist/main.js meanwhile; the
// temp tree mirrors apps/<app>/dist and apps/greeter/proto, so the apps' proto paths resolve as in the repo.
// Then the built greeter registers in a throwaway etcd and `nest start gateway` serves a call to it.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { ROOT, childEnv, getJson, listPrefix, uniqueNamespace, useProcesses, type ManagedProcess } from '../support/processes.js';
import { useEtcd } from '../support/use-etcd.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);
const NEST_BIN = join(ROOT, 'node_modules/@nestjs/cli/bin/nest.js');
const APPS = ['greeter', 'gateway'] as const;
type App = (typeof APPS)[number];

/** Child PIDs of `pid` (Linux), to check that stopping `nest start` stops the app it spawned. */
async function childPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(/\s+/).filter(Boolean).map(Number);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('Nest CLI (nest-cli.json, tsc builder)', () => {
  const processes = useProcesses();
  const fx = useEtcd({ beforeDestroy: () => processes.endFile() });
  let work: string;
  /** `-p` takes a path relative to the working directory (the CLI joins it onto cwd). */
  const tsconfigOf = (app: App): string => relative(ROOT, join(work, `tsconfig.${app}.json`));
  const distOf = (app: App): string => join(work, app, 'dist');

  beforeAll(async () => {
    // Under the repo (git-ignored .tmp/), so the built files resolve `nestjs-etcd-discovery` and the
    // `"type": "module"` of the root package.json as the apps' own dist folders do.
    await mkdir(join(ROOT, '.tmp'), { recursive: true });
    work = await mkdtemp(join(ROOT, '.tmp', 'nest-cli-'));
    await cp(join(ROOT, 'apps/greeter/proto'), join(work, 'greeter/proto'), { recursive: true });
    for (const app of APPS) {
      const appDir = join(ROOT, 'apps', app);
      await writeFile(
        join(work, `tsconfig.${app}.json`),
        JSON.stringify({
          extends: relative(work, join(appDir, 'tsconfig.json')),
          compilerOptions: { outDir: `./${app}/dist`, tsBuildInfoFile: `./${app}/tsconfig.tsbuildinfo` },
          // `references` is not inherited through `extends`.
          references: [{ path: relative(work, join(ROOT, 'libs/etcd-discovery')) }],
        }),
      );
    }
  }, 30_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('`npx nest build greeter` and `npx nest build gateway` exit 0 and emit one .js per source file, importing the library by package name', async () => {
    for (const app of APPS) {
      const started = performance.now();
      // execFile rejects on a non-zero exit code, with the CLI's output in the error.
      const { stdout, stderr } = await run('npx', ['nest', 'build', app, '-p', tsconfigOf(app)], { cwd: ROOT, env: childEnv(), timeout: 90_000 });
      console.log(`[nest-cli] npx nest build ${app}: ${Math.round(performance.now() - started)} ms${stdout || stderr ? `\n${stdout}${stderr}` : ''}`);
      expect(`${stdout}${stderr}`, 'tsc diagnostics from nest build').not.toMatch(/error TS\d+|Found \d+ error/);

      const sources = (await readdir(join(ROOT, 'apps', app, 'src'))).filter((file) => file.endsWith('.ts') && !file.endsWith('.spec.ts'));
      const emitted = (await readdir(distOf(app))).filter((file) => file.endsWith('.js'));
      // The layout `npm run build` (tsc -b) gives apps/<app>/dist: what `nest start` and the proto paths expect.
      expect(emitted.sort()).toEqual(sources.map((file) => file.replace(/\.ts$/, '.js')).sort());
      // The library stays an import by package name (the workspace's dist at run time), never a copy or a path.
      const code = await Promise.all(emitted.map((file) => readFile(join(distOf(app), file), 'utf8')));
      expect(code.filter((text) => /^import .* from 'nestjs-etcd-discovery';$/m.test(text)).length).toBeGreaterThan(0);
      expect(code.filter((text) => text.includes('libs/etcd-discovery'))).toEqual([]);
    }
  }, 180_000);

  it('the built greeter registers and `nest start gateway` serves /hello through discovery, and stops with the CLI', async () => {
    const namespace = uniqueNamespace('nest-cli');
    const greeter = processes.spawnNode('greeter (nest build)', join(distOf('greeter'), 'main.js'), {
      ETCD_HOSTS: fx.etcd.endpoint,
      DISCOVERY_NAMESPACE: namespace,
      LEASE_TTL_SECONDS: '2',
      GRPC_URL: '127.0.0.1:0',
    });
    const entry = await waitFor(
      async () => {
        if (!greeter.alive) throw greeter.failure('exited before registering');
        return (await listPrefix(fx.etcd.endpoint, `${namespace}/greeter/`)).find((candidate) => candidate.key.includes(`-${greeter.pid}-`));
      },
      20_000,
      { intervalMs: 25, what: `greeter (pid ${greeter.pid}) to register` },
    );
    const address = (JSON.parse(entry.value) as { Addr: string }).Addr;

    const port = await freePort();
    const started = performance.now();
    // --no-shell: with the CLI's default (a shell between it and the app) a SIGTERM to the CLI orphans the app.
    const cli: ManagedProcess = processes.spawnNode(
      'nest start gateway',
      NEST_BIN,
      { ETCD_HOSTS: fx.etcd.endpoint, DISCOVERY_NAMESPACE: namespace, PORT: String(port) },
      ['start', 'gateway', '-p', tsconfigOf('gateway'), '--no-shell'],
    );
    const match = await cli.waitForOutput(/gateway listening on (http:\/\/\S+)/, 60_000);
    console.log(`[nest-cli] nest start gateway: listening after ${Math.round(performance.now() - started)} ms`);
    const [app] = await childPids(cli.pid);
    expect(app, 'the app process nest start spawned').toBeDefined();
    // It runs the output of this build, not apps/gateway/dist.
    expect(await readFile(`/proc/${app}/cmdline`, 'utf8')).toContain(join(distOf('gateway'), 'main'));

    const url = match[1].replace('[::1]', '127.0.0.1').replace(/\/$/, '');
    const reply = await waitFor(() => getJson<{ message: string; address: string }>(`${url}/hello?name=nest-cli`), 15_000, { intervalMs: 25, what: 'a /hello reply' });
    expect(reply).toMatchObject({ message: 'Hello, nest-cli!', address });

    const exit = await cli.stop();
    // Once the CLI is gone its orphan (if any) is re-parented; give the reaping a moment.
    const appStillAlive = await waitFor(() => !isAlive(app), 3_000, { intervalMs: 25 }).then(() => false, () => true);
    if (appStillAlive) process.kill(app, 'SIGKILL');
    expect(exit.forced, cli.output()).toBe(false);
    expect(appStillAlive, 'the gateway outlived `nest start`').toBe(false);
  }, 120_000);
});
