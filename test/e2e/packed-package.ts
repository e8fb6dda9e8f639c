// The library as a consumer gets it: `npm pack` of the workspace package, and that tarball installed into a
// consumer's node_modules the way npm lays it out, without the network.
import { execFile } from 'node:child_process';
import { mkdir, readFile, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../support/processes.js';

export const run = promisify(execFile);
export const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
export const PACKAGE_NAME = 'nestjs-etcd-discovery';

export interface PackedManifest {
  name: string;
  type?: string;
  main?: string;
  types?: string;
  bin?: string | Record<string, string>;
  exports?: Record<string, string | Record<string, string>>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/**
 * Packs the library into `dir` and returns the tarball's path. --ignore-scripts: no prepack rebuild (the suite runs
 * on the build made before it, and other test files run the built apps meanwhile); the tarball is what `dist` holds now.
 */
export async function packLibrary(dir: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', '-w', PACKAGE_NAME, '--pack-destination', dir, '--ignore-scripts', '--json'], {
    cwd: ROOT,
    timeout: 30_000,
  });
  const [packed] = JSON.parse(stdout) as [{ filename: string }];
  return join(dir, packed.filename);
}

/**
 * Installs `tarball` under `modules` and returns its manifest. `npm install --offline` cannot resolve the peers'
 * transitive tree from this machine's npm cache (ENOTCACHED), so: the package itself as a real directory from the
 * tarball, its dependencies and peers (and @types/node) linked from this repo's node_modules; `optionalPeers: false`
 * leaves out the peers the manifest marks optional, as npm does unless the app depends on them.
 */
export async function installPacked(tarball: string, modules: string, { optionalPeers = true }: { optionalPeers?: boolean } = {}): Promise<PackedManifest> {
  await mkdir(modules, { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', modules]);
  await run('mv', [join(modules, 'package'), join(modules, PACKAGE_NAME)]);
  const manifest = JSON.parse(await readFile(join(modules, PACKAGE_NAME, 'package.json'), 'utf8')) as PackedManifest;
  const peers = Object.keys(manifest.peerDependencies ?? {}).filter((name) => optionalPeers || !manifest.peerDependenciesMeta?.[name]?.optional);
  const linked = [...Object.keys(manifest.dependencies ?? {}), ...peers, '@types/node'];
  for (const name of linked) {
    await mkdir(dirname(join(modules, name)), { recursive: true });
    await symlink(join(ROOT, 'node_modules', name), join(modules, name), 'dir');
  }
  await linkBins(join(modules, PACKAGE_NAME), manifest);
  return manifest;
}

/** `node_modules/.bin` links made by npm's own code for it (bin-links, which `npm install` runs: link, then chmod). */
async function linkBins(path: string, manifest: PackedManifest): Promise<void> {
  const npmRoot = join((await run('npm', ['root', '-g'])).stdout.trim(), 'npm');
  const binLinks = createRequire(join(npmRoot, 'package.json'))('bin-links') as (options: object) => Promise<unknown>;
  await binLinks({ path, pkg: manifest, top: false, global: false, force: true });
}

/** `tsc -p tsconfig.json` in `cwd`: its diagnostics, or '' when it compiled cleanly. */
export async function tscDiagnostics(cwd: string, timeoutMs: number): Promise<string> {
  return run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd, timeout: timeoutMs }).then(
    () => '',
    (error: { stdout?: string; stderr?: string; message: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}` || error.message,
  );
}
