import {
  castGrpcError,
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCResourceExhastedError,
  GRPCUnavailableError,
} from 'etcd3';
import { describe, expect, it } from 'vitest';
import {
  classifyEtcdFailure,
  describeEtcdFailure,
  isCompactedError,
  isResponseTooLarge,
  LASTING_FAILURE_RETRY_MS,
  MAX_FAILURE_DETAIL_CHARS,
  retryDelayAfter,
} from './etcd-failure.js';

/**
 * What grpc-js hands etcd3: an Error with a numeric `code`; etcd3 casts it to its own classes exactly as
 * it does on a real call. Messages are the ones measured against etcd 3.4.23 with etcd3 1.1.2 / grpc-js 1.14.7.
 */
function fromGrpc(code: number, message: string): Error {
  return castGrpcError(Object.assign(new Error(message), { code }));
}

const MEASURED = {
  wrongPassword: fromGrpc(3, '3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password'),
  noCredentials: fromGrpc(3, '3 INVALID_ARGUMENT: etcdserver: user name is empty'),
  rbacDenied: fromGrpc(7, '7 PERMISSION_DENIED: etcdserver: permission denied'),
  watchDenied: new EtcdPermissionDeniedError('Watcher canceled: rpc error: code = PermissionDenied desc = etcdserver: permission denied'),
  wrongCa: fromGrpc(14, '14 UNAVAILABLE: No connection established. Last error: Error: unable to verify the first certificate. Resolution note: '),
  missingClientCert: fromGrpc(
    14,
    '14 UNAVAILABLE: No connection established. Last error: 807C4911557F0000:error:0A000412:SSL routines:ssl3_read_bytes:' +
      'sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42\n' +
      ' (2026-11-29T15:31:57.977Z). Resolution note: ',
  ),
  httpsToPlainPort: fromGrpc(
    14,
    '14 UNAVAILABLE: No connection established. Last error: Error: Client network socket disconnected before secure TLS connection was established. Resolution note: ',
  ),
  tooLarge: fromGrpc(8, '8 RESOURCE_EXHAUSTED: Received message larger than max (5240376 vs 4194304)'),
  refused: fromGrpc(14, '14 UNAVAILABLE: No connection established. Last error: Failed to connect (2026-11-29T15:31:57.994Z). Resolution note: '),
  deadline: fromGrpc(4, '4 DEADLINE_EXCEEDED: Deadline exceeded after 2.001s'),
  compacted: fromGrpc(11, '11 OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted'),
};

describe('classifyEtcdFailure', () => {
  it('casts the measured gRPC errors to the etcd3 classes a real call produces', () => {
    // Guards the premise of the tests below: these are the objects the mirror really sees.
    expect(MEASURED.wrongPassword).toBeInstanceOf(EtcdAuthenticationFailedError);
    expect(MEASURED.rbacDenied).toBeInstanceOf(EtcdPermissionDeniedError);
    expect(MEASURED.wrongCa).toBeInstanceOf(GRPCUnavailableError);
    expect(MEASURED.tooLarge).toBeInstanceOf(GRPCResourceExhastedError);
    expect(MEASURED.deadline).toBeInstanceOf(GRPCDeadlineExceededError);
  });

  it.each([
    ['a wrong password', MEASURED.wrongPassword],
    ['auth enabled and no user given', MEASURED.noCredentials],
    ['an RBAC refusal on a range', MEASURED.rbacDenied],
    ['an RBAC refusal on a watch', MEASURED.watchDenied],
    ['an expired simple token', new EtcdInvalidAuthTokenError('etcdserver: invalid auth token')],
    ['a bare gRPC PERMISSION_DENIED code', Object.assign(new Error('denied by a proxy'), { code: 7 })],
    ['a bare gRPC UNAUTHENTICATED code', Object.assign(new Error('no token'), { code: 16 })],
  ])('%s is "permission denied"', (_label, error) => {
    expect(classifyEtcdFailure(error)).toBe('permission denied');
  });

  it.each([
    ['a server certificate from another CA', MEASURED.wrongCa],
    ['no client certificate while etcd requires one', MEASURED.missingClientCert],
    ['https to a plain-text port', MEASURED.httpsToPlainPort],
    ['a certificate for another host', new GRPCUnavailableError("14 UNAVAILABLE: Hostname/IP does not match certificate's altnames")],
    ['an expired certificate', new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Error: certificate has expired')],
  ])('%s is "TLS failed"', (_label, error) => {
    expect(classifyEtcdFailure(error)).toBe('TLS failed');
  });

  it('a response over the receive limit is "response too large", whether cast or still a raw gRPC error', () => {
    expect(classifyEtcdFailure(MEASURED.tooLarge)).toBe('response too large');
    expect(classifyEtcdFailure(Object.assign(new Error('Received message larger than max (9 vs 4)'), { code: 8 }))).toBe('response too large');
    expect(isResponseTooLarge(MEASURED.tooLarge)).toBe(true);
  });

  it('etcd shedding load (RESOURCE_EXHAUSTED "too many requests") is not a size problem', () => {
    const overloaded = fromGrpc(8, '8 RESOURCE_EXHAUSTED: etcdserver: too many requests');
    expect(isResponseTooLarge(overloaded)).toBe(false);
    expect(classifyEtcdFailure(overloaded)).toBe('etcd unreachable');
  });

  it('a connection closed for too many pings (etcd 3.4 grpc-proxy\'s GOAWAY, as grpc-js words it) is not a size problem', () => {
    const pings = fromGrpc(8, '8 RESOURCE_EXHAUSTED: Bandwidth exhausted or memory limit exceeded');
    expect(isResponseTooLarge(pings)).toBe(false);
    expect(classifyEtcdFailure(pings)).toBe('etcd unreachable');
  });

  it.each([
    ['a refused connection', MEASURED.refused],
    ['a deadline', MEASURED.deadline],
    ['a closed client', new ClientClosedError('KV')],
    ['a thrown string', 'socket hang up'],
    ['undefined', undefined],
  ])('%s is "etcd unreachable"', (_label, error) => {
    expect(classifyEtcdFailure(error)).toBe('etcd unreachable');
  });

  it('recognises a compacted revision and nothing else as compaction', () => {
    expect(isCompactedError(MEASURED.compacted)).toBe(true);
    expect(isCompactedError(MEASURED.deadline)).toBe(false);
  });
});

describe('describeEtcdFailure', () => {
  it('starts with the kind, then ": " and the original message', () => {
    expect(describeEtcdFailure(MEASURED.rbacDenied)).toBe('permission denied: 7 PERMISSION_DENIED: etcdserver: permission denied');
    expect(describeEtcdFailure(MEASURED.wrongCa)).toMatch(/^TLS failed: 14 UNAVAILABLE: .*unable to verify the first certificate/);
  });

  it('escapes control characters so one failure stays one log line', () => {
    const text = describeEtcdFailure(MEASURED.missingClientCert);
    expect(text.startsWith('TLS failed: ')).toBe(true);
    expect(text).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(text).toContain('\\u000a');
    expect(describeEtcdFailure(new Error('a\u001b[31mred\r\nforged line'))).not.toMatch(/[\u0000-\u001f]/);
  });

  it('truncates a huge message', () => {
    const text = describeEtcdFailure(new Error(`boom ${'x'.repeat(100_000)}`));
    expect(text.startsWith('etcd unreachable: boom xxx')).toBe(true);
    expect(text.length).toBeLessThan(MAX_FAILURE_DETAIL_CHARS + 60);
  });

  it('never throws, even for an error whose message getter throws', () => {
    const hostile = new Error('x');
    Object.defineProperty(hostile, 'message', {
      get() {
        throw new Error('gotcha');
      },
    });
    expect(describeEtcdFailure(hostile)).toBe('etcd unreachable: (unprintable error)');
    expect(describeEtcdFailure(new Error(''))).toBe('etcd unreachable: (no message)');
  });
});

describe('retryDelayAfter', () => {
  it.each([
    ['a wrong CA', MEASURED.wrongCa],
    ['a missing client certificate', MEASURED.missingClientCert],
    ['an RBAC refusal', MEASURED.rbacDenied],
    ['a wrong password', MEASURED.wrongPassword],
  ])('waits 2.5-5 s after %s (it needs a person, not a retry)', (_label, error) => {
    for (let i = 0; i < 50; i++) {
      const delay = retryDelayAfter(error, 100);
      expect(delay).toBeGreaterThanOrEqual(LASTING_FAILURE_RETRY_MS / 2);
      expect(delay).toBeLessThanOrEqual(LASTING_FAILURE_RETRY_MS);
    }
  });

  it.each([
    ['a refused connection', MEASURED.refused],
    ['a deadline', MEASURED.deadline],
    ['a response too large', MEASURED.tooLarge],
    ['an expired auth token (etcd3 logs in again)', new EtcdInvalidAuthTokenError('etcdserver: invalid auth token')],
  ])('keeps the backoff after %s', (_label, error) => {
    expect(retryDelayAfter(error, 123)).toBe(123);
  });
});
