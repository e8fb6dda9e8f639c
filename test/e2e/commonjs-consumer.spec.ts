// A CommonJS Nest app using the published package: test/fixtures/commonjs-consumer (no "type": "module",
// tsc with module nodenext, so it compiles to require()) installs the packed tarball, compiles with this
// repo's TypeScript and runs with node. The library is ESM; this proves require(esm) of it works on the
// Node versions its `engines` names, end to end: register a gRPC server, discover it, call it.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type LocalEtcd } from '../../scripts/local-etcd.mjs';
import { GREETER_PROTO, ROOT, listPrefix, uniqueNamespace, useProcesses } from '../support/processes.js';

const run = promisify(execFile);
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const FIXTURE = join(ROOT, 'test/fixtures/commonjs-consumer');

interface PackedManifest {
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

interface ConsumerResult {
  moduleSystem: string;
  resolved: string;
  key?: string;
  instanceId: string;
  reply: { message: string; instanceId: string; address: string };
}

describe('CommonJS consumer of the packed nestjs-etcd-discovery', () => {
  const processes = useProcesses();
  let etcd: LocalEtcd;
  let work: string;
  let consumer: string;

  beforeAll(async () => {
    const started = performance.now();
    [etcd, work] = await Promise.all([startEtcd(), mkdtemp(join(tmpdir(), 'etcd-discovery-cjs-'))]);
    // Same packing as package.spec.ts: no prepack rebuild, the tarball is what `dist` holds now (other
    // test files run the built apps meanwhile).
    const { stdout } = await run('npm', ['pack', '-w', 'nestjs-etcd-discovery', '--pack-destination', work, '--ignore-scripts', '--json'], {
      cwd: ROOT,
      timeout: 30_000,
    });
    const [packed] = JSON.parse(stdout) as [{ filename: string }];
    consumer = join(work, 'consumer');
    await cp(FIXTURE, consumer, { recursive: true, filter: (source) => !/[/\\](node_modules|dist)$/.test(source) });
    const modules = join(consumer, 'node_modules');
    await mkdir(modules, { recursive: true });
    // `npm install --offline` cannot resolve the peers' tree without the network (see package.spec.ts):
    // the package as a real directory from the tarball, its dependencies and peers linked from this repo.
    await run('tar', ['-xzf', join(work, packed.filename), '-C', modules]);
    await run('mv', [join(modules, 'package'), join(modules, 'nestjs-etcd-discovery')]);
    const manifest = JSON.parse(await readFile(join(modules, 'nestjs-etcd-discovery/package.json'), 'utf8')) as PackedManifest;
    const linked = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {}), '@types/node'];
    for (const name of linked) {
      await mkdir(dirname(join(modules, name)), { recursive: true });
      await symlink(join(ROOT, 'node_modules', name), join(modules, name), 'dir');
    }
    console.log(`[commonjs] packed and installed in ${Math.round(performance.now() - started)} ms`);
  }, 60_000);

  afterAll(async () => {
    await processes.endFile();
    await etcd?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  }, 30_000);

  it('compiles to require() with tsc (nodenext, no "type": "module"), registers a greeter and calls it through discovery', async () => {
    const consumerManifest = JSON.parse(await readFile(join(consumer, 'package.json'), 'utf8')) as { type?: string };
    expect(consumerManifest.type, 'the consumer must be a CommonJS package').toBeUndefined();

    const compileStarted = performance.now();
    const tsc = await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: consumer, timeout: 60_000 }).catch(
      (error: { stdout?: string; stderr?: string; message: string }) => ({ stdout: `${error.stdout ?? ''}${error.stderr ?? ''}` || error.message, failed: true }),
    );
    expect('failed' in tsc ? tsc.stdout : '', 'tsc -p on the CommonJS consumer').toBe('');
    const compileMs = Math.round(performance.now() - compileStarted);
    const emitted = await readFile(join(consumer, 'dist/main.js'), 'utf8');
    expect(emitted).toContain('require("nestjs-etcd-discovery")');
    expect(emitted).not.toMatch(/^\s*(import|export)\s/m);

    const namespace = uniqueNamespace('cjs');
    const runStarted = performance.now();
    const proc = processes.spawnNode('commonjs-consumer', join(consumer, 'dist/main.js'), {
      ETCD_HOSTS: etcd.endpoint,
      DISCOVERY_NAMESPACE: namespace,
      GREETER_PROTO,
    });
    const exit = await proc.awaitExit(45_000);
    const runMs = Math.round(performance.now() - runStarted);
    expect(exit, proc.output()).toMatchObject({ code: 0, forced: false });
    // (Node 22.12 still prints an ExperimentalWarning for require(esm); that is not a failure.)
    expect(proc.output(), 'CommonJS loading the ESM package').not.toMatch(/ERR_REQUIRE_ESM|ERR_REQUIRE_ASYNC_MODULE/);

    const line = proc
      .output()
      .split('\n')
      .find((text) => text.startsWith('{"moduleSystem"'));
    expect(line, proc.output()).toBeDefined();
    const result = JSON.parse(line!) as ConsumerResult;
    console.log(`[commonjs] tsc ${compileMs} ms, run ${runMs} ms: ${JSON.stringify(result)}`);
    expect(result.moduleSystem).toBe('commonjs');
    // The tarball's copy, not the workspace link.
    expect(result.resolved).toBe(join(consumer, 'node_modules/nestjs-etcd-discovery/dist/index.js'));
    expect(result.key).toBe(`${namespace}/greeter/${result.instanceId}`);
    expect(result.reply.message).toBe('Hello, commonjs!');
    expect(result.reply.instanceId).toBe(result.instanceId);
    expect(result.reply.address).toMatch(/^127\.0\.0\.1:\d+$/);

    // app.close() withdrew the registration: nothing is left under the namespace.
    expect(await listPrefix(etcd.endpoint, `${namespace}/`)).toEqual([]);
  }, 90_000);
});
