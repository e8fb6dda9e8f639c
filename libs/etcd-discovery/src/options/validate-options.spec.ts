import { describe, expect, it } from 'vitest';
import type { EtcdDiscoveryModuleOptions } from './etcd-discovery-options.interface.js';
import { InvalidDiscoveryOptionsError } from './invalid-options.error.js';
import { validateOptions, validateServiceName } from './validate-options.js';
import { invalid } from '../../../../test/support/invalid-options.js';


/** Bypasses the option types so tests can hand in what a JavaScript caller could. */
function loose(value: unknown): EtcdDiscoveryModuleOptions {
  return value as EtcdDiscoveryModuleOptions;
}

describe('validateOptions defaults', () => {
  it.each([
    ['undefined', undefined],
    ['null', null],
    ['an empty object', {}],
  ])('fills every default for %s', (_label, options) => {
    expect(validateOptions(loose(options))).toEqual({
      etcd: { hosts: ['http://127.0.0.1:2379'], tls: undefined, auth: undefined, requestTimeoutMs: 5_000, keepaliveIntervalMs: 10_000 },
      namespace: '/services',
      registrations: [],
      server: { ttlSeconds: 10, drainDelayMs: 1_000, shutdownTimeoutMs: 10_000, healthService: true },
      discoveryTimeoutMs: 10_000,
      namespaceWatchFrom: 32,
    });
  });

  it('keeps values the user gave', () => {
    const resolved = validateOptions({
      etcd: { hosts: ['https://etcd-1:2379', 'https://etcd-2:2379'], requestTimeoutMs: 2_000, keepaliveIntervalMs: 0, auth: { username: 'root', password: '' } },
      namespace: '/prod/services',
      server: { ttlSeconds: 2, drainDelayMs: 0, shutdownTimeoutMs: 3_600_000, healthService: false },
      discoveryTimeoutMs: 0,
      namespaceWatchFrom: 0,
    });
    expect(resolved.etcd).toEqual({
      hosts: ['https://etcd-1:2379', 'https://etcd-2:2379'],
      tls: undefined,
      auth: { username: 'root', password: '' },
      requestTimeoutMs: 2_000,
      keepaliveIntervalMs: 0,
    });
    expect(resolved.namespace).toBe('/prod/services');
    expect(resolved.server).toEqual({ ttlSeconds: 2, drainDelayMs: 0, shutdownTimeoutMs: 3_600_000, healthService: false });
    expect(resolved.discoveryTimeoutMs).toBe(0);
    expect(resolved.namespaceWatchFrom).toBe(0);
  });

  it('does not hand back the default hosts array itself (callers cannot mutate the default)', () => {
    const first = validateOptions({});
    (first.etcd.hosts as string[]).push('http://mutated:1');
    expect(validateOptions({}).etcd.hosts).toEqual(['http://127.0.0.1:2379']);
  });

  it('rejects options that are not an object', () => {
    const error = invalid(() => validateOptions(loose('http://127.0.0.1:2379')));
    expect(error.field).toBe('options');
    expect(error.message).toMatch(/"options".*got "http:\/\/127\.0\.0\.1:2379".*pass an object/);
  });
});

describe('validateOptions etcd.hosts', () => {
  it.each([
    ['a string becomes a one-element array', 'http://10.0.0.1:2379', ['http://10.0.0.1:2379']],
    ['a trailing slash is removed', 'http://10.0.0.1:2379/', ['http://10.0.0.1:2379']],
    ['each element is normalised', ['http://a:2379/', 'https://b.example.com:2380'], ['http://a:2379', 'https://b.example.com:2380']],
    ['IPv6 hosts keep their brackets', ['http://[::1]:2379/'], ['http://[::1]:2379']],
    ['upper-case scheme and host are lower-cased', ['HTTP://ETCD:2379'], ['http://etcd:2379']],
  ])('%s', (_label, hosts, expected) => {
    expect(validateOptions({ etcd: { hosts } }).etcd.hosts).toEqual(expected);
  });

  it.each([
    ['an empty array', [], 'etcd.hosts', /"etcd\.hosts".*got \[\].*at least one endpoint/],
    ['a number', 2379, 'etcd.hosts', /"etcd\.hosts".*got 2379.*at least one endpoint/],
    ['no scheme', ['127.0.0.1:2379'], 'etcd.hosts[0]', /"etcd\.hosts\[0\]".*got "127\.0\.0\.1:2379".*"http:\/\/host:port"/],
    ['an unparseable URL', ['http://'], 'etcd.hosts[0]', /"etcd\.hosts\[0\]".*got "http:\/\/".*"http:\/\/host:port"/],
    ['a non-string element', ['http://a:2379', 42], 'etcd.hosts[1]', /"etcd\.hosts\[1\]".*got 42/],
    ['another scheme', ['grpc://a:2379'], 'etcd.hosts[0]', /got "grpc:\/\/a:2379".*scheme and port required/],
    ['no port', ['http://a'], 'etcd.hosts[0]', /got "http:\/\/a".*scheme and port required/],
    ['a path', ['http://a:2379/v3'], 'etcd.hosts[0]', /got "http:\/\/a:2379\/v3".*no path/],
  ])('rejects %s', (_label, hosts, field, message) => {
    const error = invalid(() => validateOptions(loose({ etcd: { hosts } })));
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it('does not keep the URL parser error (it carries the whole input, credentials included)', () => {
    const error = invalid(() => validateOptions({ etcd: { hosts: ['http://'] } }));
    expect(error.cause).toBeUndefined();
    expect(error.message).toMatch(/write an endpoint as "http:\/\/host:port"/);
  });

  // BUG: WHATWG URL reports an explicit default port (":80" for http, ":443" for https) as port "",
  // so a host written exactly as the message asks ("https://host:port") is rejected as having no port.
  it.each([
    ['https://etcd.example.com:443', 'https://etcd.example.com:443'],
    ['http://etcd.example.com:80', 'http://etcd.example.com:80'],
  ])('accepts an explicit default port: %s', (host, expected) => {
    expect(validateOptions({ etcd: { hosts: [host] } }).etcd.hosts).toEqual([expected]);
  });
});

describe('validateOptions etcd.tls and etcd.auth', () => {
  const ca = Buffer.from('ca');

  it('accepts a CA alone and a full client certificate pair', () => {
    const hosts = ['https://127.0.0.1:2379'];
    expect(validateOptions({ etcd: { hosts, tls: { rootCertificate: ca } } }).etcd.tls).toEqual({ rootCertificate: ca });
    const pair = { rootCertificate: ca, privateKey: Buffer.from('k'), certChain: Buffer.from('c') };
    expect(validateOptions({ etcd: { hosts, tls: pair } }).etcd.tls).toEqual(pair);
  });

  it('refuses TLS material with a plain http:// host, naming the host', () => {
    const error = invalid(() => validateOptions({ etcd: { hosts: ['https://a:2379', 'http://b:2379'], tls: { rootCertificate: ca } } }));
    expect(error.field).toBe('etcd.tls');
    expect(error.message).toMatch(/http:\/\/b:2379 is plain http.*https:\/\/host:port/);
  });

  it('never shows key material or a password in the message or the error value', () => {
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIsecretsecretsecret\n-----END PRIVATE KEY-----';
    const secretPassword = 'hunter2-correct-horse';
    const attempts = [
      () => validateOptions(loose({ etcd: { hosts: ['https://a:1'], tls: { rootCertificate: pem } } })),
      () => validateOptions(loose({ etcd: { hosts: ['https://a:1'], tls: { rootCertificate: ca, privateKey: pem, certChain: ca } } })),
      () => validateOptions(loose({ etcd: { hosts: ['https://a:1'], tls: { rootCertificate: ca, privateKey: Buffer.from(pem) } } })),
      () => validateOptions(loose({ etcd: { auth: { username: 42, password: secretPassword } } })),
      () => validateOptions(loose({ etcd: { auth: { username: 'u', password: Buffer.from(secretPassword) } } })),
      () => validateOptions(loose({ etcd: { tls: { rootCertificate: Buffer.from(pem) } } })),
    ];
    for (const attempt of attempts) {
      const error = invalid(attempt);
      const shown = `${error.message} ${JSON.stringify(error.value)} ${String(error.value)}`;
      expect(shown).not.toContain('secretsecret');
      expect(shown).not.toContain('BEGIN PRIVATE KEY');
      expect(shown).not.toContain('hunter2');
    }
  });

  it.each([
    ['a missing CA', {}, 'etcd.tls.rootCertificate', /pass the CA certificate as a Buffer/],
    ['a CA given as a string', { rootCertificate: 'ca.pem' }, 'etcd.tls.rootCertificate', /got "<string of 6 characters, redacted>".*Buffer/],
    ['a string private key', { rootCertificate: ca, privateKey: 'k', certChain: Buffer.from('c') }, 'etcd.tls.privateKey', /got "<string of 1 characters, redacted>".*Buffer/],
    ['a key without a chain', { rootCertificate: ca, privateKey: Buffer.from('k') }, 'etcd.tls', /both privateKey and certChain/],
    ['a chain without a key', { rootCertificate: ca, certChain: Buffer.from('c') }, 'etcd.tls', /both privateKey and certChain/],
  ])('rejects %s', (_label, tls, field, message) => {
    const error = invalid(() => validateOptions(loose({ etcd: { tls } })));
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it.each([
    ['an empty user name', { username: '', password: 'x' }, 'etcd.auth.username', /got "".*non-empty string/],
    ['a missing password', { username: 'root' }, 'etcd.auth.password', /got "<redacted>".*password as a string/],
  ])('rejects auth with %s', (_label, auth, field, message) => {
    const error = invalid(() => validateOptions(loose({ etcd: { auth } })));
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it('never prints the password it rejects', () => {
    const error = invalid(() => validateOptions(loose({ etcd: { auth: { username: 'root', password: 12345678 } } })));
    expect(error.message).not.toContain('12345678');
  });
});

describe('validateOptions numbers', () => {
  it.each([
    ['etcd.requestTimeoutMs', { etcd: { requestTimeoutMs: 99 } }, 99, /whole number of milliseconds from 100 to 300000/],
    ['etcd.requestTimeoutMs', { etcd: { requestTimeoutMs: 300_001 } }, 300_001, /from 100 to 300000/],
    ['etcd.keepaliveIntervalMs', { etcd: { keepaliveIntervalMs: 1_000 } }, 1_000, /use 0 \(no pings\) or at least 5000/],
    ['etcd.keepaliveIntervalMs', { etcd: { keepaliveIntervalMs: -1 } }, -1, /from 0 to 3600000/],
    ['server.ttlSeconds', { server: { ttlSeconds: 1 } }, 1, /whole number of seconds from 2 to 3600/],
    ['server.ttlSeconds', { server: { ttlSeconds: 2.5 } }, 2.5, /whole number of seconds/],
    ['server.ttlSeconds', { server: { ttlSeconds: '10' } }, '"10"', /whole number of seconds/],
    ['server.drainDelayMs', { server: { drainDelayMs: -1 } }, -1, /from 0 to 300000/],
    ['server.shutdownTimeoutMs', { server: { shutdownTimeoutMs: Number.NaN } }, 'NaN', /from 0 to 3600000/],
    ['discoveryTimeoutMs', { discoveryTimeoutMs: Number.POSITIVE_INFINITY }, 'Infinity', /from 0 to 3600000/],
    ['namespaceWatchFrom', { namespaceWatchFrom: -1 }, -1, /whole number of followed services \(0: never\) from 0 to 1000000/],
    ['namespaceWatchFrom', { namespaceWatchFrom: 2.5 }, 2.5, /whole number of followed services/],
    ['namespaceWatchFrom', { namespaceWatchFrom: Number.POSITIVE_INFINITY }, 'Infinity', /from 0 to 1000000/],
  ])('rejects %s = %s', (field, options, shown, message) => {
    const error = invalid(() => validateOptions(loose(options)));
    expect(error.field).toBe(field);
    expect(error.message).toContain(`"${field}" is invalid (got ${shown})`);
    expect(error.message).toMatch(message);
  });

  it.each([['"true"', 'true'], ['1', 1], ['null', null]])('rejects server.healthService = %s (a boolean or nothing)', (shown, healthService) => {
    const error = invalid(() => validateOptions(loose({ server: { healthService } })));
    expect(error.field).toBe('server.healthService');
    expect(error.message).toContain(`"server.healthService" is invalid (got ${shown})`);
    expect(error.message).toMatch(/use true or false/);
  });
});

describe('validateOptions namespace', () => {
  it.each([
    ['/services/', '/services'],
    ['/services///', '/services'],
    ['/prod/services', '/prod/services'],
    ['services', 'services'],
  ])('%s resolves to %s', (namespace, expected) => {
    expect(validateOptions({ namespace }).namespace).toBe(expected);
  });

  it.each([['/'], [''], ['/a//b'], ['/a b'], ['/ümlaut'], [42]])('rejects %j', (namespace) => {
    const error = invalid(() => validateOptions(loose({ namespace })));
    expect(error.field).toBe('namespace');
    expect(error.message).toMatch(/"namespace".*path segments of letters, digits/);
  });
});

describe('validateOptions registration', () => {
  it('accepts one registration or a list, with empty metadata by default', () => {
    expect(validateOptions({ registration: { serviceName: 'greeter' } }).registrations).toEqual([
      { serviceName: 'greeter', host: undefined, port: undefined, metadata: {} },
    ]);
    expect(
      validateOptions({
        registration: [
          { serviceName: 'greeter', host: '10.0.0.7', port: 50051 },
          { serviceName: 'billing.v2', host: '::1', metadata: { version: '1.0.0', zone: 'eu-1', weight: 0 } },
        ],
      }).registrations,
    ).toEqual([
      { serviceName: 'greeter', host: '10.0.0.7', port: 50051, metadata: {} },
      { serviceName: 'billing.v2', host: '::1', port: undefined, metadata: { version: '1.0.0', zone: 'eu-1', weight: 0 } },
    ]);
  });

  it('rejects a service name used twice, naming the second entry', () => {
    const error = invalid(() => validateOptions({ registration: [{ serviceName: 'greeter' }, { serviceName: 'greeter' }] }));
    expect(error.field).toBe('registration[1].serviceName');
    expect(error.message).toMatch(/got "greeter".*register each service name once per process/);
  });

  it.each([
    ['a null entry', { registration: [null] }, 'registration[0]', /got null.*serviceName/],
    ['a missing service name', { registration: {} }, 'registration.serviceName', /got undefined.*1-128 letters/],
    ['a service name with a slash', { registration: { serviceName: 'a/b' } }, 'registration.serviceName', /got "a\/b".*no "\/"/],
    ['a host with a port', { registration: { serviceName: 's', host: '10.0.0.1:5000' } }, 'registration.host', /got "10\.0\.0\.1:5000".*without a port/],
    ['a bracketed IPv6 host', { registration: { serviceName: 's', host: '[::1]' } }, 'registration.host', /got "\[::1\]"/],
    ['port 0', { registration: [{ serviceName: 's', port: 0 }] }, 'registration[0].port', /got 0.*from 1 to 65535/],
    ['port 65536', { registration: { serviceName: 's', port: 65_536 } }, 'registration.port', /got 65536.*from 1 to 65535/],
    ['metadata as an array', { registration: { serviceName: 's', metadata: ['a'] } }, 'registration.metadata', /got \["a"\].*plain object/],
    ['metadata as null', { registration: { serviceName: 's', metadata: null } }, 'registration.metadata', /got null.*plain object/],
    ['a negative weight', { registration: { serviceName: 's', metadata: { weight: -1 } } }, 'registration.metadata.weight', /got -1.*whole number from 0 to 1000000/],
    ['a fractional weight', { registration: { serviceName: 's', metadata: { weight: 1.5 } } }, 'registration.metadata.weight', /got 1\.5/],
    ['a string weight', { registration: { serviceName: 's', metadata: { weight: '2' } } }, 'registration.metadata.weight', /got "2"/],
    ['a numeric version', { registration: { serviceName: 's', metadata: { version: 1 } } }, 'registration.metadata.version', /got 1.*use a string of at most 128 characters/],
    ['an object zone', { registration: [{ serviceName: 's', metadata: { zone: { id: 1 } } }] }, 'registration[0].metadata.zone', /got \{"id":1\}.*use a string of at most 128/],
  ])('rejects %s', (_label, options, field, message) => {
    const error = invalid(() => validateOptions(loose(options)));
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it('rejects metadata with a cycle and keeps the JSON error as the cause', () => {
    const metadata: Record<string, unknown> = { version: '1' };
    metadata.self = metadata;
    const error = invalid(() => validateOptions({ registration: { serviceName: 's', metadata } }));
    expect(error.field).toBe('registration.metadata');
    expect(error.message).toMatch(/JSON-serializable \(no cycles/);
    expect(error.cause).toBeInstanceOf(TypeError);
  });

  it('rejects metadata with a BigInt', () => {
    const error = invalid(() => validateOptions({ registration: { serviceName: 's', metadata: { n: 1n } } }));
    expect(error.field).toBe('registration.metadata');
    expect(error.message).toMatch(/no BigInt/);
  });

  it('accepts metadata up to 16 KiB of JSON and rejects one byte more, stating the size', () => {
    const overhead = JSON.stringify({ blob: '' }).length;
    const fits = { blob: 'x'.repeat(16 * 1024 - overhead) };
    expect(validateOptions({ registration: { serviceName: 's', metadata: fits } }).registrations[0].metadata).toEqual(fits);
    const tooBig = { blob: 'x'.repeat(16 * 1024 - overhead + 1) };
    const error = invalid(() => validateOptions({ registration: { serviceName: 's', metadata: tooBig } }));
    expect(error.field).toBe('registration.metadata');
    expect(error.message).toMatch(/got "16385 bytes".*under 16384 bytes/);
  });

  it('returns a copy of the metadata, not the caller object', () => {
    const metadata = { version: '1.0.0', nested: { a: 1 } };
    const resolved = validateOptions({ registration: { serviceName: 's', metadata } }).registrations[0].metadata;
    expect(resolved).toEqual(metadata);
    expect(resolved).not.toBe(metadata);
    expect(resolved.nested).not.toBe(metadata.nested);
  });
});

describe('validateServiceName', () => {
  it.each([['greeter'], ['a'], ['Billing_v2.eu-1'], ['9lives'], ['x'.repeat(128)]])('accepts %s', (name) => {
    expect(validateServiceName('serviceName', name)).toBe(name);
  });

  it.each([[''], ['-lead'], ['.hidden'], ['a/b'], ['a b'], ['x'.repeat(129)], [undefined], [42]])('rejects %j', (name) => {
    const error = invalid(() => validateServiceName('clients[2].serviceName', name));
    expect(error.field).toBe('clients[2].serviceName');
    expect(error.value).toBe(name);
    expect(error.message).toMatch(/"clients\[2\]\.serviceName" is invalid.*1-128 letters, digits/);
  });
});

describe('validateOptions keeps credentials in URLs out of errors', () => {
  it.each(['http://root:S3cretPassw0rd@etcd.internal', 'http://root:S3cretPassw0rd@127.0.0.1:2379', 'https://u:S3cret/Passw0rd@[::1]:2379/'])(
    'refuses %s without showing the password',
    (host) => {
      const error = invalid(() => validateOptions({ etcd: { hosts: [host] } }));
      expect(error.field).toBe('etcd.hosts[0]');
      expect(error.message).toMatch(/<redacted>@.*etcd\.auth/);
      expect(`${error.message} ${String(error.value)} ${String(error.cause)}`).not.toContain('S3cret');
    },
  );

  it('trims trailing slashes of a long namespace in linear time', () => {
    const startedAt = performance.now();
    expect(() => validateOptions({ namespace: `/a${'/'.repeat(40_000)}b` })).toThrow(InvalidDiscoveryOptionsError);
    expect(validateOptions({ namespace: `/ns${'/'.repeat(40_000)}` }).namespace).toBe('/ns');
    expect(performance.now() - startedAt).toBeLessThan(200);
  });
});
