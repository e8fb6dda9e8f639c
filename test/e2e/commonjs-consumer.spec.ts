// A CommonJS Nest app using the published package: test/fixtures/commonjs-consumer (no "type": "module",
// tsc with module nodenext, so it compiles to require()) installs the packed tarball, compiles with this
// repo's TypeScript and runs with node. The library is ESM; this proves require(esm) of it works on the
// Node versions its `engines` names, end to end: register a gRPC server, discover it, call it.
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GREETER_PROTO_PATH } from '../support/greeter-proto.js';
import { ROOT, listPrefix, uniqueNamespace, useProcesses } from '../support/processes.js';
import { useEtcd } from '../support/use-etcd.js';
import { installPacked, packLibrary, tscDiagnostics } from './packed-package.js';

const FIXTURE = join(ROOT, 'test/fixtures/commonjs-consumer');

interface ConsumerResult {
  moduleSystem: string;
  resolved: string;
  key?: string;
  instanceId: string;
  reply: { message: string; instanceId: string; address: string };
}

describe('CommonJS consumer of the packed nestjs-etcd-discovery', () => {
  const processes = useProcesses();
  const fx = useEtcd({ beforeDestroy: () => processes.endFile() });
  let work: string;
  let consumer: string;

  beforeAll(async () => {
    const started = performance.now();
    work = await mkdtemp(join(tmpdir(), 'etcd-discovery-cjs-'));
    const tarball = await packLibrary(work);
    consumer = join(work, 'consumer');
    await cp(FIXTURE, consumer, { recursive: true, filter: (source) => !/[/\\](node_modules|dist)$/.test(source) });
    await installPacked(tarball, join(consumer, 'node_modules'));
    console.log(`[commonjs] packed and installed in ${Math.round(performance.now() - started)} ms`);
  }, 60_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('compiles to require() with tsc (nodenext, no "type": "module"), registers a greeter and calls it through discovery', async () => {
    const consumerManifest = JSON.parse(await readFile(join(consumer, 'package.json'), 'utf8')) as { type?: string };
    expect(consumerManifest.type, 'the consumer must be a CommonJS package').toBeUndefined();

    const compileStarted = performance.now();
    expect(await tscDiagnostics(consumer, 60_000), 'tsc -p on the CommonJS consumer').toBe('');
    const compileMs = Math.round(performance.now() - compileStarted);
    const emitted = await readFile(join(consumer, 'dist/main.js'), 'utf8');
    expect(emitted).toContain('require("nestjs-etcd-discovery")');
    expect(emitted).not.toMatch(/^\s*(import|export)\s/m);

    const namespace = uniqueNamespace('cjs');
    const runStarted = performance.now();
    const proc = processes.spawnNode('commonjs-consumer', join(consumer, 'dist/main.js'), {
      ETCD_HOSTS: fx.etcd.endpoint,
      DISCOVERY_NAMESPACE: namespace,
      GREETER_PROTO: GREETER_PROTO_PATH,
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
    expect(await listPrefix(fx.etcd.endpoint, `${namespace}/`)).toEqual([]);
  }, 90_000);
});
