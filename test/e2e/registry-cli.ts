// The package's registry CLI (`bin`: nestjs-etcd-discovery) as an operator runs it, and etcdctl writing the
// registry as a Go service or an operator would: leased keys in etcd's naming format.
import { execFile } from 'node:child_process';
import { ROOT, childEnv } from '../support/processes.js';
import { etcdctl } from '../security/secure-etcd.js';

/** The built bin (`npx tsc -b libs/etcd-discovery`), as package.json's "bin" names it. */
export const CLI_MAIN = `${ROOT}libs/etcd-discovery/dist/cli/main.js`;

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** The environment of a CLI process: ours (without Vitest's and any etcdctl variables) plus `extra`. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = childEnv();
  for (const key of Object.keys(env)) if (key.startsWith('ETCDCTL_')) delete env[key];
  return { ...env, ...extra };
}

/** Runs `command args` to its end; resolves with its exit code and output whatever the code. */
export function runToEnd(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    execFile(command, [...args], { env: options.env ?? cliEnv(), cwd: options.cwd ?? ROOT, timeout: options.timeoutMs ?? 20_000 }, (error, stdout, stderr) => {
      const code = error ? (error as { code?: unknown }).code : 0;
      if (typeof code !== 'number') reject(new Error(`${command} ${args.join(' ')} did not exit by itself (${String(error)})\n${stdout}${stderr}`));
      else resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The built CLI with `args`. */
export function registryCli(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<CliResult> {
  return runToEnd(process.execPath, [CLI_MAIN, ...args], { env });
}

/** etcd's naming format, as Go's naming / endpoints packages write it. */
export function namingRecord(address: string, metadata: Record<string, unknown> = {}): string {
  return JSON.stringify({ Op: 0, Addr: address, Metadata: metadata });
}

/** `etcdctl lease grant`: the new lease's id, in etcdctl's hexadecimal. */
export async function grantLease(endpoint: string, ttlSeconds: number): Promise<string> {
  const output = await etcdctl(endpoint, ['lease', 'grant', String(ttlSeconds)]);
  const id = /^lease ([0-9a-f]+) granted/.exec(output)?.[1];
  if (!id) throw new Error(`unexpected etcdctl lease grant output: ${output}`);
  return id;
}

/** `etcdctl put [--lease]`. */
export async function putKey(endpoint: string, key: string, value: string, lease?: string): Promise<void> {
  await etcdctl(endpoint, ['put', ...(lease ? [`--lease=${lease}`] : []), key, value]);
}

export { etcdctl };
