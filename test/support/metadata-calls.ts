// Calls carrying call metadata (routing headers, hash keys), for the per-request routing and consistent-hash tests.
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { firstValueFrom } from 'rxjs';
import type { CallOutcome, GreeterClient } from './grpc-servers.js';

/** One SayHello with `entries` as call metadata; never throws. */
export async function callWithMetadata(client: GreeterClient, entries: Record<string, string>, deadlineMs = 5_000): Promise<CallOutcome> {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(entries)) metadata.set(key, value);
  const startedAt = performance.now();
  try {
    const reply = await firstValueFrom(client.sayHello({ name: 'test' }, metadata, { deadline: Date.now() + deadlineMs }));
    const at = performance.now();
    return { ok: true, port: Number(reply.address), at, ms: at - startedAt };
  } catch (error) {
    const at = performance.now();
    const { code, details } = error as ServiceError;
    return { ok: false, code, details: details ?? String(error), at, ms: at - startedAt };
  }
}
