import { createRequire } from 'node:module';
import type * as Api from '@opentelemetry/api';

export type OtelApi = typeof Api;

const require = createRequire(import.meta.url);

/**
 * `@opentelemetry/api` if the app has it, else undefined. It is an optional peer: a static import of
 * an absent package fails the whole library at load, so it is required on first use. The required
 * (CommonJS) copy finds the app's MeterProvider however the app imported the API: every build of
 * the API keeps its providers on `globalThis[Symbol.for('opentelemetry.js.api.<major>')]`
 * (docs/field-notes.md).
 */
export function loadOtelApi(): OtelApi | undefined {
  try {
    return require('@opentelemetry/api') as OtelApi;
  } catch {
    return undefined;
  }
}

/** This package's version, for the meter's scope: the same path from src/ and dist/. */
export function libraryVersion(): string | undefined {
  try {
    return (require('../../package.json') as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** Where every copy of API 1.x keeps the app's providers, with the version of the copy that put them there. */
export function globalOtelRegistry(): { readonly version?: string; readonly metrics?: unknown } | undefined {
  return (globalThis as Record<symbol, { version?: string; metrics?: unknown } | undefined>)[Symbol.for('opentelemetry.js.api.1')];
}
