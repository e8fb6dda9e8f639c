import { isRecoverableError } from 'etcd3';
import { errorMessage } from '../common/backoff.js';
import { printable } from '../common/printable.js';
import { classifyEtcdFailure, MAX_FAILURE_DETAIL_CHARS } from './etcd-failure.js';

export interface EtcdFailureRecord {
  readonly message: string;
  /** ms since the epoch. */
  readonly at: number;
}

/** What one etcd client has seen of etcd lately; times in ms since the epoch. */
export interface EtcdActivitySnapshot {
  /** The last request etcd answered (unary call or lease keepalive). */
  readonly lastSuccessAt?: number;
  readonly lastError?: EtcdFailureRecord;
  /** The first failure with no answer since: etcd has been out of reach from then on. */
  readonly failingSince?: number;
}

/**
 * Whether etcd answers this process, fed by the client's fault-handling policy (every unary call)
 * and by lease keepalive answers; etcd3 has no request hook of its own. An app that makes no request
 * (no registration, no followed service) has no evidence either way and is not counted as failing.
 */
export class EtcdActivity {
  private lastSuccessAt?: number;
  private lastError?: EtcdFailureRecord;
  private failingSince?: number;

  succeeded(at = Date.now()): void {
    this.lastSuccessAt = at;
    this.failingSince = undefined;
  }

  /** An error etcd itself sent (a lease it no longer knows, a compacted revision) proves it answers. */
  failed(error: unknown, at = Date.now()): void {
    if (!isOutOfReach(error)) {
      this.succeeded(at);
      return;
    }
    this.lastError = { message: printable(errorMessage(error), MAX_FAILURE_DETAIL_CHARS), at };
    this.failingSince ??= at;
  }

  get snapshot(): EtcdActivitySnapshot {
    return { lastSuccessAt: this.lastSuccessAt, lastError: this.lastError, failingSince: this.failingSince };
  }
}

/**
 * Transport trouble (UNAVAILABLE, deadline, reset: what etcd3 calls recoverable) and refusals a person
 * must fix (permission, TLS) mean etcd cannot be used. Any other error etcd3 raises came with an answer
 * (a lease etcd no longer knows, a compacted revision, a response over our receive limit).
 */
function isOutOfReach(error: unknown): boolean {
  if (!(error instanceof Error)) return true;
  const kind = classifyEtcdFailure(error);
  if (kind === 'permission denied' || kind === 'TLS failed') return true;
  if (kind === 'response too large') return false;
  return isRecoverableError(error);
}

const activities = new WeakMap<object, EtcdActivity>();

/** The activity tracker of a client made by `createEtcdClient`; undefined for any other client. */
export function etcdActivityOf(client: object): EtcdActivity | undefined {
  return activities.get(client);
}

export function attachEtcdActivity(client: object, activity: EtcdActivity): void {
  activities.set(client, activity);
}
