import {
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCResourceExhastedError,
  GRPCUnauthenticatedError,
} from 'etcd3';
import { errorMessage } from '../common/backoff.js';
import { printable } from '../common/printable.js';

/** Why etcd could not be listed, as a person fixing it needs to know first. */
export type EtcdFailureKind = 'permission denied' | 'TLS failed' | 'response too large' | 'etcd unreachable';

/** Longest original message kept in a description: enough for grpc-js' "Last error: ..." tail. */
export const MAX_FAILURE_DETAIL_CHARS = 300;

const GRPC_PERMISSION_DENIED = 7;
const GRPC_RESOURCE_EXHAUSTED = 8;
const GRPC_UNAUTHENTICATED = 16;

// etcd3 turns most gRPC errors into its own classes and drops the numeric `code` on the way; the
// texts below are what etcd 3.4.23 and grpc-js 1.14.7 were measured to send, matched as a fallback.
const PERMISSION_TEXT =
  /permission denied|PERMISSION_DENIED|UNAUTHENTICATED|authentication failed|invalid auth token|user name is empty|auth token is not provided/i;
// grpc-js reports TLS trouble as UNAVAILABLE "No connection established. Last error: ..." with node's TLS
// message: a wrong CA gives "unable to verify the first certificate", a missing client certificate the
// server's "SSL routines:...alert bad certificate", https against a plain port "before secure TLS connection".
const TLS_TEXT = /certificate|\bSSL\b|\bTLS\b|handshake|altnames|ERR_SSL|wrong version number/i;
const TOO_LARGE_TEXT = /larger than max|RESOURCE_EXHAUSTED/i;
// Same gRPC code, but etcd shedding load: that is etcd being unavailable, not our message size.
const OVERLOADED_TEXT = /too many requests/i;
/** grpc-js's text when a server closes the connection for too many pings (etcd 3.4's grpc-proxy does): not a size. */
const PINGS_REFUSED_TEXT = /bandwidth exhausted/i;
const COMPACTED_TEXT = /required revision has been compacted/i;

export function classifyEtcdFailure(error: unknown): EtcdFailureKind {
  const message = errorMessage(error);
  const code = codeOf(error);
  if (
    error instanceof EtcdPermissionDeniedError ||
    error instanceof EtcdAuthenticationFailedError ||
    error instanceof EtcdInvalidAuthTokenError ||
    error instanceof GRPCUnauthenticatedError ||
    code === GRPC_PERMISSION_DENIED ||
    code === GRPC_UNAUTHENTICATED ||
    PERMISSION_TEXT.test(message)
  ) {
    return 'permission denied';
  }
  if (TLS_TEXT.test(message)) return 'TLS failed';
  if (isResponseTooLarge(error)) return 'response too large';
  return 'etcd unreachable';
}

/** "<kind>: <original message, escaped and truncated>", e.g. for NoLiveInstanceError and UNAVAILABLE details. */
export function describeEtcdFailure(error: unknown): string {
  const detail = printable(errorMessage(error), MAX_FAILURE_DETAIL_CHARS);
  return `${classifyEtcdFailure(error)}: ${detail || '(no message)'}`;
}

/** A response over the client's receive limit: a smaller page may fit. etcd's own overload is excluded. */
export function isResponseTooLarge(error: unknown): boolean {
  const message = errorMessage(error);
  if (OVERLOADED_TEXT.test(message) || PINGS_REFUSED_TEXT.test(message)) return false;
  return error instanceof GRPCResourceExhastedError || codeOf(error) === GRPC_RESOURCE_EXHAUSTED || TOO_LARGE_TEXT.test(message);
}

/** A read pinned at a revision etcd has compacted away since. */
export function isCompactedError(error: unknown): boolean {
  return COMPACTED_TEXT.test(errorMessage(error));
}

function codeOf(error: unknown): number | undefined {
  try {
    const code = (error as { code?: unknown } | null | undefined)?.code;
    return typeof code === 'number' ? code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A refused certificate or a refused permission does not heal by retrying: someone has to change a
 * certificate or a role. Retrying those every second only floods etcd with handshakes (15-18 per
 * second per app were measured with a wrong CA), so they wait at least this long. An expired auth
 * token is not one of them: etcd3 logs in again at once.
 */
export const LASTING_FAILURE_RETRY_MS = 5_000;

/** The delay before retrying after `error`: the backoff's, or longer for failures that need a person. */
export function retryDelayAfter(error: unknown, backoffMs: number): number {
  const kind = classifyEtcdFailure(error);
  const lasting = kind === 'TLS failed' || (kind === 'permission denied' && !(error instanceof EtcdInvalidAuthTokenError) && !/invalid auth token/i.test(errorMessage(error)));
  return lasting ? Math.max(backoffMs, LASTING_FAILURE_RETRY_MS * (0.5 + Math.random() / 2)) : backoffMs;
}
