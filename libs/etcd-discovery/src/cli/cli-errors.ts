import { describeEtcdFailure } from '../registry/etcd-failure.js';

/** The process's exit codes, documented in the README's "Registry CLI" section. */
export const EXIT = {
  ok: 0,
  /** `check` found a problem (also any unexpected error). */
  findings: 1,
  usage: 2,
  /** etcd could not be read: unreachable, TLS refused or permission denied. */
  etcd: 3,
} as const;

/** An error the CLI reports as one message and an exit code, without a stack. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** A wrong command line or option: exit 2, with a pointer to the help. */
export class UsageError extends CliError {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message, EXIT.usage);
  }
}

/** Why etcd could not be read, classified as the library classifies it ("etcd unreachable: ...", "TLS failed: ..."). */
export function etcdFailure(hosts: readonly string[], error: unknown): CliError {
  return new CliError(`cannot read etcd at ${hosts.join(',')}: ${describeEtcdFailure(error)}`, EXIT.etcd);
}
