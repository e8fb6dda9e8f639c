/** Thrown at startup when an option is wrong: names the field, the value it got and the fix. */
export class InvalidDiscoveryOptionsError extends Error {
  override readonly name = 'InvalidDiscoveryOptionsError';

  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly fix: string,
    options?: { cause?: unknown },
  ) {
    super(`nestjs-etcd-discovery: option "${field}" is invalid (got ${describe(value)}): ${fix}`, options);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined || value === null || typeof value !== 'object') return String(value);
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

export function failOption(field: string, value: unknown, fix: string, cause?: unknown): never {
  throw new InvalidDiscoveryOptionsError(field, value, fix, cause === undefined ? undefined : { cause });
}
