// The Nest CLI on this monorepo, as a newcomer types it in a fresh clone: `npx nest build greeter`, `npx nest
// build gateway`, `nest start gateway` (nest-cli.json, tsc builder, no flags). The clone is a throwaway copy of
// the working tree (sources and configs, no dist) under .tmp/, with its own node_modules whose entries link to
// ours except the workspace packages, which link to the copy's as the workspace does; `npm ci`'s `prepare`
// (tsc -b libs/etcd-discovery) built the library. Then the library's source is edited in the copy (a new export
// the gateway uses): the CLI's app builds type-check against it and build it (the apps' tsconfig takes the
// library's types from its sources; the @demo/nest-build-references plugin builds the referenced library before
// the app is emitted, see README "Nest toolchain"), a type error on either side fails the build, and the gateway
// `nest start gateway` runs carries the edit and serves a call to the built greeter.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify, stripVTControlCharacters } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { ManagedProcess, ROOT, childEnv, getJson, listPrefix, uniqueNamespace, useProcesses } from '../support/processes.js';
import { useEtcd } from '../support/use-etcd.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);
/** The gateway first: its build is the first after the library edit, so it cannot lean on a library built by another. */
const APPS = ['gateway', 'greeter'] as const;
/** The workspace's packages (root package.json `workspaces`), linked under node_modules by the names below. */
const PACKAGES: Record<string, string> = {
  'nestjs-etcd-discovery': 'libs/etcd-discovery',
  '@demo/greeter': 'apps/greeter',
  '@demo/gateway': 'apps/gateway',
  '@demo/nest-build-references': 'tools/nest-build-references',
};
const ROOT_FILES = ['package.json', 'nest-cli.json', 'tsconfig.base.json'];
/** Build output and installed packages are what a clone does not have. */
const NOT_IN_A_CLONE = /\/(dist|node_modules)(\/|$)|\.tsbuildinfo$/;
const LIBRARY_INDEX = 'libs/etcd-discovery/src/index.ts';
const GATEWAY_MAIN = 'apps/gateway/src/main.ts';

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

/**
 * Until `cli` has printed nothing for `quietMs`. @nestjs/cli 12.0 loses a SIGTERM that lands while `--watch`
 * restarts the app (the signal reaches the old app, the new one keeps the CLI running), and one edit can set off
 * two rebuilds: stop it only once it is idle.
 */
async function quiet(cli: ManagedProcess, quietMs = 1_500): Promise<void> {
  let length = -1;
  let since = 0;
  await waitFor(
    () => {
      const now = cli.output().length;
      if (now !== length) [length, since] = [now, performance.now()];
      return performance.now() - since >= quietMs;
    },
    30_000,
    { intervalMs: 100, what: `${cli.name} to print nothing for ${quietMs} ms` },
  );
}

/** The working tree's packages and root configs in `dir`, installed as `npm ci` would (links to our packages). */
async function cloneWorkspace(dir: string): Promise<void> {
  for (const file of ROOT_FILES) await cp(join(ROOT, file), join(dir, file));
  for (const project of Object.values(PACKAGES)) {
    await cp(join(ROOT, project), join(dir, project), { recursive: true, filter: (source) => !NOT_IN_A_CLONE.test(source.slice(ROOT.length - 1)) });
    // A project's own node_modules holds the versions npm nested there (grpc-js, OpenTelemetry).
    const nested = join(ROOT, project, 'node_modules');
    if (await stat(nested).then(() => true, () => false)) await symlink(nested, join(dir, project, 'node_modules'));
  }
  await mkdir(join(dir, 'node_modules/@demo'), { recursive: true });
  for (const name of await readdir(join(ROOT, 'node_modules'))) {
    if (name === 'nestjs-etcd-discovery' || name === '@demo' || name === '.package-lock.json') continue;
    await symlink(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name));
  }
  // The workspace links npm makes, to this copy's packages.
  for (const [name, project] of Object.entries(PACKAGES)) await symlink(join(dir, project), join(dir, 'node_modules', name));
}

describe('Nest CLI (nest-cli.json, tsc builder) in a fresh clone', () => {
  const processes = useProcesses();
  const fx = useEtcd({ beforeDestroy: () => processes.endFile() });
  let work: string;
  let libraryIndex: string;
  const distOf = (app: string): string => join(work, 'apps', app, 'dist');
  const builtLibrary = (): Promise<string> => readFile(join(work, 'libs/etcd-discovery/dist/index.js'), 'utf8');
  /** The library's source with one more export, which the gateway prints when it starts. */
  const editLibrary = (exported: string): Promise<void> => writeFile(join(work, LIBRARY_INDEX), `${libraryIndex}export const NEST_CLI_EDIT = ${exported};\n`);
  const edit = (): string => `nestjs-etcd-discovery edited in this clone ${randomBytes(4).toString('hex')}`;

  /** Runs `npx args` in the clone; resolves with the exit code and the output, printed for the log. */
  const npx = async (args: string[]): Promise<{ code: number; output: string }> => {
    const started = performance.now();
    const { code, stdout, stderr } = await run('npx', args, { cwd: work, env: childEnv(), timeout: 90_000 }).then(
      (result) => ({ code: 0, ...result }),
      // execFile rejects on a non-zero exit code, with the command's output in the error.
      (error: { code?: unknown; stdout?: string; stderr?: string }) => ({ code: typeof error.code === 'number' ? error.code : -1, stdout: error.stdout ?? '', stderr: error.stderr ?? `${String(error)}` }),
    );
    const output = stripVTControlCharacters(`${stdout}${stderr}`);
    console.log(`[nest-cli] npx ${args.join(' ')}: exit ${code}, ${Math.round(performance.now() - started)} ms${output ? `\n${output}` : ''}`);
    return { code, output };
  };
  const build = async (args: string[]): Promise<void> => {
    const { code, output } = await npx(args);
    expect(output, `tsc diagnostics from npx ${args.join(' ')}`).not.toMatch(/error TS\d+|Found \d+ error/);
    expect(code, output).toBe(0);
  };

  beforeAll(async () => {
    // Under the repo (git-ignored .tmp/): the copy's links resolve as the real tree's do.
    await mkdir(join(ROOT, '.tmp'), { recursive: true });
    work = await mkdtemp(join(ROOT, '.tmp', 'nest-cli-'));
    await cloneWorkspace(work);
    await build(['tsc', '-b', 'libs/etcd-discovery']); // the root `prepare` script, run by `npm ci`
    libraryIndex = await readFile(join(work, LIBRARY_INDEX), 'utf8');
    // The gateway uses an export the built library does not have yet.
    const main = await readFile(join(work, GATEWAY_MAIN), 'utf8');
    await writeFile(join(work, GATEWAY_MAIN), `${main}\nimport { NEST_CLI_EDIT } from 'nestjs-etcd-discovery';\nconsole.log('gateway sees ' + NEST_CLI_EDIT.trim());\n`);
  }, 120_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('`npx nest build gateway` and `npx nest build greeter` type-check against the edited library, build it, and emit one .js per source file importing it by package name', async () => {
    const text = edit();
    await editLibrary(JSON.stringify(text));
    expect(await builtLibrary()).not.toContain(text);
    for (const app of APPS) {
      await build(['nest', 'build', app]);
      const sources = (await readdir(join(work, 'apps', app, 'src'))).filter((file) => file.endsWith('.ts') && !file.endsWith('.spec.ts'));
      const emitted = (await readdir(distOf(app), { recursive: true })).filter((file) => file.endsWith('.js'));
      // The layout `npm run build` (tsc -b) gives apps/<app>/dist: what `nest start` and the proto paths expect;
      // the library's sources, which the app was checked against, are not emitted into it.
      expect(emitted.sort()).toEqual(sources.map((file) => file.replace(/\.ts$/, '.js')).sort());
      // The library stays an import by package name (the workspace's dist at run time), never a copy or a path.
      const code = await Promise.all(emitted.map((file) => readFile(join(distOf(app), file), 'utf8')));
      expect(code.filter((text) => /^import .* from 'nestjs-etcd-discovery';$/m.test(text)).length).toBeGreaterThan(0);
      expect(code.filter((text) => text.includes('libs/etcd-discovery'))).toEqual([]);
    }
    // The CLI's app build built the edited library (the plugin), no library build asked for.
    expect(await builtLibrary()).toContain(text);
  }, 180_000);

  it('a library change the app no longer type-checks against, and a type error in the library, fail `npx nest build gateway` with the diagnostic', async () => {
    try {
      await editLibrary('42 as const');
      const app = await npx(['nest', 'build', 'gateway']);
      expect(app.code).not.toBe(0);
      expect(app.output).toMatch(/apps\/gateway\/src\/main\.ts.*error TS2339: Property 'trim' does not exist on type '42'/);

      await editLibrary('"x"; export const NEST_CLI_BROKEN: number = "not a number"');
      const library = await npx(['nest', 'build', 'gateway']);
      expect(library.code).not.toBe(0);
      expect(library.output).toMatch(/etcd-discovery\/src\/index\.ts.*error TS2322: Type 'string' is not assignable to type 'number'/);
    } finally {
      await editLibrary(JSON.stringify(edit()));
    }
  }, 120_000);

  it('the built greeter registers and `nest start gateway`, after one more library edit, runs the edited library, serves /hello through discovery, and stops with the CLI', async () => {
    const text = edit();
    await editLibrary(JSON.stringify(text));
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
    expect(cli.output(), 'the gateway loaded the edited library').toContain(`gateway sees ${text}`);
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
  it('`nest start gateway --watch` restarts the gateway on the edited library when only the library\'s source changes, and outlives a library type error', async () => {
    const first = edit();
    await editLibrary(JSON.stringify(first));
    const port = await freePort();
    const cli = processes.track(
      new ManagedProcess(
        'nest start gateway --watch',
        spawn(process.execPath, [join(work, 'node_modules/@nestjs/cli/bin/nest.js'), 'start', 'gateway', '--watch', '--no-shell'], {
          cwd: work,
          env: childEnv({ ETCD_HOSTS: fx.etcd.endpoint, DISCOVERY_NAMESPACE: uniqueNamespace('nest-cli-watch'), PORT: String(port) }),
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      ),
    );
    try {
      await cli.waitForOutput(new RegExp(`gateway sees ${first}[\\s\\S]*gateway listening on`), 60_000);
      const second = edit();
      const edited = performance.now();
      await editLibrary(JSON.stringify(second));
      // The watcher sees the library's source (part of the app's program), rebuilds the library and restarts the app.
      await cli.waitForOutput(new RegExp(`gateway sees ${second}[\\s\\S]*gateway listening on`), 60_000);
      console.log(`[nest-cli] nest start --watch: restarted on the library edit after ${Math.round(performance.now() - edited)} ms`);
      expect(await builtLibrary()).toContain(second);

      // A half-finished library edit (a type error) is reported and the session goes on, as with the app's own errors.
      await editLibrary('"x"; export const NEST_CLI_BROKEN: number = "not a number"');
      await cli.waitForOutput(/index\.ts\(\d+,\d+\): error TS2322: Type 'string' is not assignable to type 'number'[\s\S]*@demo\/nest-build-references: building \S+ failed/, 60_000);
      const third = edit();
      await editLibrary(JSON.stringify(third));
      await cli.waitForOutput(new RegExp(`gateway sees ${third}[\\s\\S]*gateway listening on`), 60_000);
      expect(cli.alive, 'the watch session survived the library type error').toBe(true);
    } finally {
      await quiet(cli).catch(() => undefined);
      const exit = await cli.stop();
      expect(exit.forced, cli.output()).toBe(false);
    }
  }, 200_000);
});
