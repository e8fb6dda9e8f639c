// The Nest CLI on this monorepo, as a newcomer types it in a fresh clone: `npx nest build greeter`, `npx nest
// build gateway`, `nest start gateway` (nest-cli.json, tsc builder, no flags). The clone is a throwaway copy of
// the working tree (sources and configs, no dist) under .tmp/, with its own node_modules whose entries link to
// ours except `nestjs-etcd-discovery`, which links to the copy's library as the workspace does; `npm ci`'s
// `prepare` (tsc -b libs/etcd-discovery) built the library. Then the library's source is edited in the copy:
// the CLI's app builds leave the library's built output as it was (the tsc builder compiles one program per app
// and never builds referenced projects, see README "Nest toolchain"), `npx nest build etcd-discovery` rebuilds
// it, and the gateway `nest start gateway` runs carries the edit and serves a call to the built greeter.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, cp, mkdir, mkdtemp, readFile, readdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { ManagedProcess, ROOT, childEnv, getJson, listPrefix, uniqueNamespace, useProcesses } from '../support/processes.js';
import { useEtcd } from '../support/use-etcd.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);
const APPS = ['greeter', 'gateway'] as const;
const PROJECTS = ['libs/etcd-discovery', 'apps/greeter', 'apps/gateway'];
const ROOT_FILES = ['package.json', 'nest-cli.json', 'tsconfig.base.json'];
/** Build output and installed packages are what a clone does not have. */
const NOT_IN_A_CLONE = /\/(dist|node_modules)(\/|$)|\.tsbuildinfo$/;

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

/** The working tree's projects and root configs in `dir`, installed as `npm ci` would (links to our packages). */
async function cloneWorkspace(dir: string): Promise<void> {
  for (const file of ROOT_FILES) await cp(join(ROOT, file), join(dir, file));
  for (const project of PROJECTS) {
    await cp(join(ROOT, project), join(dir, project), { recursive: true, filter: (source) => !NOT_IN_A_CLONE.test(source.slice(ROOT.length - 1)) });
    // A project's own node_modules holds the versions npm nested there (grpc-js, OpenTelemetry).
    await symlink(join(ROOT, project, 'node_modules'), join(dir, project, 'node_modules'));
  }
  await mkdir(join(dir, 'node_modules'));
  for (const name of await readdir(join(ROOT, 'node_modules'))) {
    if (name === 'nestjs-etcd-discovery' || name === '@demo' || name === '.package-lock.json') continue;
    await symlink(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name));
  }
  // The workspace link npm makes, to this copy's library.
  await symlink('../libs/etcd-discovery', join(dir, 'node_modules/nestjs-etcd-discovery'));
}

describe('Nest CLI (nest-cli.json, tsc builder) in a fresh clone', () => {
  const processes = useProcesses();
  const fx = useEtcd({ beforeDestroy: () => processes.endFile() });
  let work: string;
  const distOf = (app: string): string => join(work, 'apps', app, 'dist');
  const builtLibrary = (): Promise<string> => readFile(join(work, 'libs/etcd-discovery/dist/index.js'), 'utf8');
  /** Printed once when the edited library is loaded. */
  const edit = `nestjs-etcd-discovery edited in this clone ${randomBytes(4).toString('hex')}`;

  const npx = async (args: string[]): Promise<string> => {
    const started = performance.now();
    // execFile rejects on a non-zero exit code, with the command's output in the error.
    const { stdout, stderr } = await run('npx', args, { cwd: work, env: childEnv(), timeout: 90_000 });
    console.log(`[nest-cli] npx ${args.join(' ')}: ${Math.round(performance.now() - started)} ms${stdout || stderr ? `\n${stdout}${stderr}` : ''}`);
    expect(`${stdout}${stderr}`, `tsc diagnostics from npx ${args.join(' ')}`).not.toMatch(/error TS\d+|Found \d+ error/);
    return `${stdout}${stderr}`;
  };

  beforeAll(async () => {
    // Under the repo (git-ignored .tmp/): the copy's links resolve as the real tree's do.
    await mkdir(join(ROOT, '.tmp'), { recursive: true });
    work = await mkdtemp(join(ROOT, '.tmp', 'nest-cli-'));
    await cloneWorkspace(work);
    await npx(['tsc', '-b', 'libs/etcd-discovery']); // the root `prepare` script, run by `npm ci`
    await appendFile(join(work, 'libs/etcd-discovery/src/index.ts'), `console.log(${JSON.stringify(edit)});\n`);
  }, 120_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('`npx nest build greeter` and `npx nest build gateway` exit 0, emit one .js per source file importing the library by package name, and leave the library as it was built', async () => {
    for (const app of APPS) {
      await npx(['nest', 'build', app]);
      const sources = (await readdir(join(work, 'apps', app, 'src'))).filter((file) => file.endsWith('.ts') && !file.endsWith('.spec.ts'));
      const emitted = (await readdir(distOf(app))).filter((file) => file.endsWith('.js'));
      // The layout `npm run build` (tsc -b) gives apps/<app>/dist: what `nest start` and the proto paths expect.
      expect(emitted.sort()).toEqual(sources.map((file) => file.replace(/\.ts$/, '.js')).sort());
      // The library stays an import by package name (the workspace's dist at run time), never a copy or a path.
      const code = await Promise.all(emitted.map((file) => readFile(join(distOf(app), file), 'utf8')));
      expect(code.filter((text) => /^import .* from 'nestjs-etcd-discovery';$/m.test(text)).length).toBeGreaterThan(0);
      expect(code.filter((text) => text.includes('libs/etcd-discovery'))).toEqual([]);
    }
    // The CLI compiled the apps only: the edited library source is not built (README "Nest toolchain").
    expect(await builtLibrary()).not.toContain(edit);
  }, 180_000);

  it('`npx nest build etcd-discovery` builds the edited library into the dist the apps import', async () => {
    await npx(['nest', 'build', 'etcd-discovery']);
    expect(await builtLibrary()).toContain(edit);
  }, 90_000);

  it('the built greeter registers and `nest start gateway` runs the edited library, serves /hello through discovery, and stops with the CLI', async () => {
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
    const cli = processes.track(
      new ManagedProcess(
        'nest start gateway',
        spawn(process.execPath, [join(work, 'node_modules/@nestjs/cli/bin/nest.js'), 'start', 'gateway', '--no-shell'], {
          cwd: work,
          env: childEnv({ ETCD_HOSTS: fx.etcd.endpoint, DISCOVERY_NAMESPACE: namespace, PORT: String(port) }),
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      ),
    );
    const match = await cli.waitForOutput(/gateway listening on (http:\/\/\S+)/, 60_000);
    console.log(`[nest-cli] nest start gateway: listening after ${Math.round(performance.now() - started)} ms`);
    expect(cli.output(), 'the gateway loaded the edited library').toContain(edit);
    const [app] = await childPids(cli.pid);
    expect(app, 'the app process nest start spawned').toBeDefined();
    // It runs this clone's build.
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
