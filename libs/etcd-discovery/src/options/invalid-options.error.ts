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

/** Fields whose values are secrets wherever they appear in an options object. */
const SECRET_KEYS = /password|secret|token|private|key|cert|credential/i;
const PEM = /-----BEGIN [A-Z ]+-----/;

/** The value as the message shows it: short, and never key material or a password. */
function describe(value: unknown): string {
  if (typeof value === 'string') return PEM.test(value) ? '<PEM text, redacted>' : JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (Buffer.isBuffer(value)) return `<Buffer of ${value.length} bytes, redacted>`;
  if (value === undefined || value === null || typeof value !== 'object') return String(value);
  try {
    const json = JSON.stringify(value, (key, item: unknown) => {
      if (key !== '' && SECRET_KEYS.test(key)) return '<redacted>';
      if (typeof item === 'string' && PEM.test(item)) return '<PEM text, redacted>';
      // JSON.stringify has already turned a Buffer into { type: 'Buffer', data } when the replacer sees it.
      if (isSerializedBuffer(item)) return '<Buffer, redacted>';
      return item;
    });
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function isSerializedBuffer(item: unknown): boolean {
  return typeof item === 'object' && item !== null && (item as { type?: unknown }).type === 'Buffer' && Array.isArray((item as { data?: unknown }).data);
}

export function failOption(field: string, value: unknown, fix: string, cause?: unknown): never {
  throw new InvalidDiscoveryOptionsError(field, value, fix, cause === undefined ? undefined : { cause });
}
