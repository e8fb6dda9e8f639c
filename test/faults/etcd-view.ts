// The test's own view of etcd: plain HTTP to etcd's gRPC gateway (stateless, so an outage or a restart of etcd
// never leaves it stuck in a reconnect backoff), over every member of a cluster, with simple-token auth if asked.
import { vi } from 'vitest';

const b64 = (text: string | Buffer): string => Buffer.from(text).toString('base64');
const unb64 = (text: string | undefined): string => Buffer.from(text ?? '', 'base64').toString('utf8');

function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  bytes[bytes.length - 1] += 1;
  return bytes.toString('base64');
}

export interface ViewKv {
  key: string;
  value: string;
  lease: string;
  createRevision: number;
  modRevision: number;
}

export interface RangeResult {
  revision: number;
  kvs: ViewKv[];
}

export class EtcdView {
  private token?: Promise<string>;
  private preferred = 0;

  /** `endpoints`: direct etcd client URLs (never a fault proxy). */
  constructor(
    readonly endpoints: readonly string[],
    private readonly auth?: { username: string; password: string },
  ) {}

  /** Every key under `prefix`; with `keysOnly` without values (cheap when values are large). */
  async range(prefix: string, timeoutMs = 1_000, options: { keysOnly?: boolean } = {}): Promise<RangeResult> {
    const body = await this.call<{ header?: { revision?: string }; kvs?: Record<string, string>[] }>(
      '/v3/kv/range',
      { key: b64(prefix), range_end: prefixEnd(prefix), ...(options.keysOnly ? { keys_only: true } : {}) },
      timeoutMs,
    );
    return {
      revision: Number(body.header?.revision ?? 0),
      kvs: (body.kvs ?? []).map((kv) => ({
        key: unb64(kv.key),
        value: unb64(kv.value),
        lease: kv.lease ?? '0',
        createRevision: Number(kv.create_revision ?? 0),
        modRevision: Number(kv.mod_revision ?? 0),
      })),
    };
  }

  async put(key: string, value: string | Buffer, timeoutMs = 5_000): Promise<void> {
    await this.call('/v3/kv/put', { key: b64(key), value: b64(value) }, timeoutMs);
  }

  async delete(key: string, timeoutMs = 5_000): Promise<void> {
    await this.call('/v3/kv/deleterange', { key: b64(key) }, timeoutMs);
  }

  /** Remaining seconds of a lease; -1 once etcd no longer knows it. */
  async leaseTtl(id: string): Promise<number> {
    const body = await this.call<{ TTL?: string }>('/v3/lease/timetolive', { ID: id }, 1_000);
    return Number(body.TTL ?? -1);
  }

  /** Retries `put` until etcd takes it (e.g. while a new leader is elected); resolves with when it succeeded. */
  putEventually(key: string, value: string, timeoutMs: number): Promise<number> {
    return vi.waitFor(
      async () => {
        await this.put(key, value, 1_000);
        return Date.now();
      },
      { timeout: timeoutMs, interval: 50 },
    );
  }

  /** POSTs to the members in turn, starting with the last one that answered. */
  private async call<T>(path: string, body: object, timeoutMs: number): Promise<T> {
    let lastError: unknown;
    for (let attempt = 0; attempt < this.endpoints.length; attempt++) {
      const index = (this.preferred + attempt) % this.endpoints.length;
      try {
        const result = await this.callOne<T>(this.endpoints[index], path, body, timeoutMs);
        this.preferred = index;
        return result;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  private async callOne<T>(endpoint: string, path: string, body: object, timeoutMs: number, retried = false): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.auth) headers.Authorization = await this.authToken(endpoint, timeoutMs);
    const response = await fetch(`${endpoint}${path}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    if (!response.ok) {
      if (this.auth && !retried && /auth token|token is invalid|authenticate/i.test(text)) {
        this.token = undefined;
        return this.callOne(endpoint, path, body, timeoutMs, true);
      }
      throw new Error(`etcd ${path} at ${endpoint}: HTTP ${response.status} ${text.slice(0, 200)}`);
    }
    return JSON.parse(text) as T;
  }

  private authToken(endpoint: string, timeoutMs: number): Promise<string> {
    this.token ??= (async () => {
      const response = await fetch(`${endpoint}/v3/auth/authenticate`, {
        method: 'POST',
        body: JSON.stringify({ name: this.auth!.username, password: this.auth!.password }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`etcd authenticate at ${endpoint}: HTTP ${response.status} ${text.slice(0, 200)}`);
      return (JSON.parse(text) as { token: string }).token;
    })().catch((error: unknown) => {
      this.token = undefined;
      throw error;
    });
    return this.token;
  }
}
