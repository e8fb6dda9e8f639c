// The published package: what `npm pack` puts in the tarball, and a consumer project that installs it
// and uses it by name, at run time (ESM import) and at type-check time (tsc, module nodenext).
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installPacked, packLibrary, run, tscDiagnostics, type PackedManifest } from './packed-package.js';
import { access, constants, realpath } from 'node:fs/promises';
import { uniqueNamespace } from '../support/processes.js';
import { useEtcd } from '../support/use-etcd.js';
import { cliEnv, grantLease, namingRecord, putKey, runToEnd } from './registry-cli.js';

describe('npm package nestjs-etcd-discovery', () => {
  let work: string;
  let tarball: string;
  let entries: string[];
  let manifest: PackedManifest;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'etcd-discovery-pack-'));
    tarball = await packLibrary(work);
    entries = (await run('tar', ['-tzf', tarball])).stdout.split('\n').filter(Boolean);
    await mkdir(join(work, 'unpacked'));
    await run('tar', ['-xzf', tarball, '-C', join(work, 'unpacked')]);
    manifest = JSON.parse(await readFile(join(work, 'unpacked/package/package.json'), 'utf8')) as PackedManifest;
  }, 45_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('packs dist/index.js, dist/index.d.ts and a package.json with exports, and no spec or build-info files', () => {
    console.log(`[package] ${tarball.split('/').pop()}: ${entries.length} files`);
    expect(entries).toContain('package/package.json');
    expect(entries).toContain('package/dist/index.js');
    expect(entries).toContain('package/dist/index.d.ts');
    expect(entries.filter((entry) => /\.spec\.|\.test\.|__tests__/.test(entry))).toEqual([]);
    expect(entries.filter((entry) => entry.endsWith('.tsbuildinfo'))).toEqual([]);
    expect(entries.filter((entry) => !entry.startsWith('package/dist/') && !entry.startsWith('package/src/') && !/^package\/(package\.json|README\.md|LICENSE)$/i.test(entry))).toEqual([]);
    // The sources the packed source maps point at (dist/*.js.map "sources": ../src/*.ts), which the workspace's
    // apps also type-check against through the `nestjs-etcd-discovery:source` export condition.
    expect(entries).toContain('package/src/index.ts');
    expect(entries.filter((entry) => entry.startsWith('package/src/') && !entry.endsWith('.ts'))).toEqual([]);

    expect(manifest.name).toBe('nestjs-etcd-discovery');
    expect(manifest.type).toBe('module');
    const root = manifest.exports?.['.'];
    expect(root).toMatchObject({ types: './dist/index.d.ts', import: './dist/index.js' });
    // Every file the manifest points at is in the tarball.
    const targets = [manifest.main, manifest.types, ...Object.values(typeof root === 'object' ? root : {})].filter((target): target is string => !!target);
    for (const target of targets) expect(entries, target).toContain(`package/${target.replace(/^\.\//, '')}`);
  });

  it('every relative link in the packed README points to a file in the tarball', async () => {
    const readme = await readFile(join(work, 'unpacked/package/README.md'), 'utf8');
    const prose = readme.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
    // Inline links and images `[text](target "title")`, and reference definitions `[label]: target`.
    const targets = [...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)|^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1] ?? m[2]);
    expect(targets.length, 'links found in the README').toBeGreaterThan(0);
    const files = targets.filter((target) => !/^([a-z][a-z0-9+.-]*:|#)/i.test(target)).map((target) => target.replace(/[#?].*$/, ''));
    // A path outside the package (../../docs) works in the repository but is dead on npm.
    for (const file of files) expect(entries, `README link ${file}`).toContain(`package/${posix.normalize(decodeURI(file)).replace(/^\.\//, '')}`);
  });

  it('installs into a consumer project, imports by name (ESM) and type-checks with tsc (nodenext)', async () => {
    const consumer = join(work, 'consumer');
    const modules = join(consumer, 'node_modules');
    await installPacked(tarball, modules);
    await writeFile(
      join(consumer, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { 'nestjs-etcd-discovery': `file:${tarball}` } }, null, 2),
    );

    await writeFile(
      join(consumer, 'smoke.mjs'),
      `import 'reflect-metadata';
import { ClientFactory, EtcdDiscoveryModule, withEtcdDiscovery } from 'nestjs-etcd-discovery';
const dynamicModule = EtcdDiscoveryModule.forRoot({ etcd: { hosts: ['http://127.0.0.1:2379'] }, namespace: '/svc' });
const serverOptions = withEtcdDiscovery({ package: 'greeter', protoPath: 'greeter.proto', url: '127.0.0.1:0' });
console.log(JSON.stringify({
  resolved: import.meta.resolve('nestjs-etcd-discovery'),
  module: typeof EtcdDiscoveryModule.forRoot,
  forRootModule: dynamicModule.module === EtcdDiscoveryModule,
  clientFactory: typeof ClientFactory.prototype.getService,
  withEtcdDiscovery: typeof serverOptions === 'object' && serverOptions !== null,
}));
`,
    );
    const smoke = await run(process.execPath, ['smoke.mjs'], { cwd: consumer, timeout: 20_000 });
    const result = JSON.parse(smoke.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    console.log(`[package] consumer import: ${JSON.stringify(result)}`);
    expect(result).toEqual({
      resolved: `file://${modules}/nestjs-etcd-discovery/dist/index.js`,
      module: 'function',
      forRootModule: true,
      clientFactory: 'function',
      withEtcdDiscovery: true,
    });

    await writeFile(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
          skipLibCheck: true,
          types: ['node'],
        },
        files: ['app.ts'],
      }),
    );
    await writeFile(
      join(consumer, 'app.ts'),
      `import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { ClientGrpc } from '@nestjs/microservices';
import { map, type Observable } from 'rxjs';
import {
  ClientFactory,
  EtcdDiscoveryModule,
  withEtcdDiscovery,
  type DiscoveredClientOptions,
  type ServiceInstance,
} from 'nestjs-etcd-discovery';

@Module({
  imports: [
    EtcdDiscoveryModule.forRoot({
      etcd: { hosts: ['http://127.0.0.1:2379'] },
      namespace: '/svc',
      registration: { serviceName: 'greeter', metadata: { version: '1.0.0', zone: 'a' } },
      server: { ttlSeconds: 5, drainDelayMs: 500 },
    }),
  ],
})
class AppModule {}

export async function serve(): Promise<void> {
  const app = await NestFactory.createMicroservice(AppModule, withEtcdDiscovery({ package: 'greeter', protoPath: 'greeter.proto', url: '0.0.0.0:0' }));
  await app.listen();
}

const greeterOptions: DiscoveredClientOptions = { package: 'greeter', protoPath: 'greeter.proto', loadBalancing: 'round_robin' };

export function discover(factory: ClientFactory): { client: Observable<ClientGrpc>; instances: Observable<readonly ServiceInstance[]>; ports: Observable<number[]> } {
  const client: Observable<ClientGrpc> = factory.getClient('greeter', greeterOptions);
  const instances = factory.instances('greeter');
  return { client, instances, ports: instances.pipe(map((list) => list.map((instance) => instance.port))) };
}

// The types are real, not any: an unknown policy name is rejected.
// @ts-expect-error 'random' is not a LoadBalancingPolicy
export const wrongPolicy: DiscoveredClientOptions = { package: 'greeter', protoPath: 'greeter.proto', loadBalancing: 'random' };
`,
    );
    expect(await tscDiagnostics(consumer, 30_000), 'tsc --noEmit on the consumer').toBe('');
  }, 60_000);

  describe('its bin, the registry CLI', () => {
    const fx = useEtcd();

    it('installed into an app, `npx nestjs-etcd-discovery ls --json` lists what etcdctl wrote and `check` exits 1 on garbage', async () => {
      expect(manifest.bin).toEqual({ 'nestjs-etcd-discovery': 'dist/cli/main.js' });
      expect(entries).toContain('package/dist/cli/main.js');
      const app = join(work, 'cli-app');
      const modules = join(app, 'node_modules');
      await installPacked(tarball, modules);
      await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'cli-app', private: true, type: 'module' }));
      const bin = join(modules, '.bin', 'nestjs-etcd-discovery');
      expect(await realpath(bin)).toBe(join(modules, 'nestjs-etcd-discovery/dist/cli/main.js'));
      await access(bin, constants.X_OK);
      expect((await readFile(bin, 'utf8')).split('\n')[0]).toBe('#!/usr/bin/env node');

      const namespace = uniqueNamespace('pkg-cli');
      const endpoint = fx.etcd.endpoint;
      const lease = await grantLease(endpoint, 30);
      await putKey(endpoint, `${namespace}/greeter/go-1`, namingRecord('127.0.0.1:50051', { zone: 'eu-1' }), lease);
      // Without npm's variables (set when the suite runs under `npm test`): npx sees the app, not the workspace's
      // config. --offline: the bin comes from the app's node_modules or the command fails, never from the registry.
      const env = Object.fromEntries(Object.entries(cliEnv()).filter(([name]) => !name.toLowerCase().startsWith('npm_')));
      const npx = (...args: string[]) =>
        runToEnd('npx', ['--no', '--offline', 'nestjs-etcd-discovery', ...args, '--endpoints', endpoint, '--namespace', namespace], {
          cwd: app,
          env: { ...env, npm_config_update_notifier: 'false' },
          timeoutMs: 30_000,
        });

      const ls = await npx('ls', '--json');
      expect(ls.code, ls.stderr).toBe(0);
      expect((JSON.parse(ls.stdout) as { instances: unknown[] }).instances).toEqual([
        expect.objectContaining({ service: 'greeter', id: 'go-1', address: '127.0.0.1:50051', zone: 'eu-1', lease }),
      ]);
      await putKey(endpoint, `${namespace}/greeter/junk`, 'not a record', lease);
      const check = await npx('check');
      console.log(`[package] npx nestjs-etcd-discovery check: exit ${check.code}\n${check.stdout}`);
      expect(check.code, check.stderr).toBe(1);
      expect(check.stdout).toMatch(new RegExp(`garbage +│ ${namespace}/greeter/junk +│ not JSON and not host:port`));
    }, 60_000);
  });
});
