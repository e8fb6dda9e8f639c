// The published package: what `npm pack` puts in the tarball, and a consumer project that installs it
// and uses it by name, at run time (ESM import) and at type-check time (tsc, module nodenext).
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installPacked, packLibrary, run, tscDiagnostics, type PackedManifest } from './packed-package.js';

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
    expect(entries.filter((entry) => !entry.startsWith('package/dist/') && !/^package\/(package\.json|README\.md|LICENSE)$/i.test(entry))).toEqual([]);

    expect(manifest.name).toBe('nestjs-etcd-discovery');
    expect(manifest.type).toBe('module');
    const root = manifest.exports?.['.'];
    expect(root).toMatchObject({ types: './dist/index.d.ts', import: './dist/index.js' });
    // Every file the manifest points at is in the tarball.
    const targets = [manifest.main, manifest.types, ...Object.values(typeof root === 'object' ? root : {})].filter((target): target is string => !!target);
    for (const target of targets) expect(entries, target).toContain(`package/${target.replace(/^\.\//, '')}`);
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
});
