import { EtcdLeaseInvalidError, EtcdPermissionDeniedError, GRPCDeadlineExceededError, GRPCResourceExhastedError, GRPCUnavailableError } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { EtcdActivity } from './etcd-activity.js';

describe('EtcdActivity', () => {
  it('counts failing from the first failure without an answer since, and clears it at the next answer', () => {
    const activity = new EtcdActivity();
    expect(activity.snapshot).toEqual({ lastSuccessAt: undefined, lastError: undefined, failingSince: undefined });
    activity.succeeded(1_000);
    activity.failed(new GRPCUnavailableError('14 UNAVAILABLE: No connection established'), 2_000);
    activity.failed(new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED'), 3_000);
    expect(activity.snapshot).toEqual({ lastSuccessAt: 1_000, lastError: { message: '4 DEADLINE_EXCEEDED', at: 3_000 }, failingSince: 2_000 });
    activity.succeeded(4_000);
    // The last error stays for context; only "failing" ends.
    expect(activity.snapshot).toEqual({ lastSuccessAt: 4_000, lastError: { message: '4 DEADLINE_EXCEEDED', at: 3_000 }, failingSince: undefined });
  });

  it('takes an error etcd itself sent as an answer, and a refusal a person must fix as a failure', () => {
    const activity = new EtcdActivity();
    activity.failed(new EtcdLeaseInvalidError('123'), 1_000);
    activity.failed(new GRPCResourceExhastedError('8 RESOURCE_EXHAUSTED: Received message larger than max'), 2_000);
    expect(activity.snapshot).toEqual({ lastSuccessAt: 2_000, lastError: undefined, failingSince: undefined });
    activity.failed(new EtcdPermissionDeniedError('etcdserver: permission denied'), 3_000);
    expect(activity.snapshot.failingSince).toBe(3_000);
    // Something that is not even an Error is no evidence that etcd answered.
    activity.failed('not even an error', 4_000);
    expect(activity.snapshot.failingSince).toBe(3_000);
  });
});
