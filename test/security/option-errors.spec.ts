// Startup option errors end up in logs, crash reports and CI output. When the wrong option holds key material or
// a password, the error must name the field and the fix without repeating the secret in any form.
import { createPrivateKey, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { NestFactory } from '@nestjs/core';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { freePort } from '../../scripts/local-etcd.mjs';
import { EtcdDiscoveryModule, InvalidDiscoveryOptionsError, type EtcdDiscoveryModuleOptions } from '../../libs/etcd-discovery/src/index.js';
import { createTestPki, type CertifiedKey, type TestPki } from '../support/certs.js';
import { recordLogs } from '../support/etcd.js';
import { securityCheck } from './security-check.js';

const logs = recordLogs();
let pki: TestPki;
let caCert: Buffer;
let client: CertifiedKey;

beforeAll(async () => {
  pki = await createTestPki();
  const ca = await pki.createAuthority('options-ca');
  caCert = ca.cert;
  client = await ca.issue('options-client', { altNames: [] });
});

afterAll(() => pki?.destroy());

/** What startup with `options` fails with (an app context, as a real app would start), and what it logged. */
async function startupFailure(options: EtcdDiscoveryModuleOptions): Promise<{ error: unknown; logged: string[] }> {
  const from = logs.lines.length;
  const error = await (async () => NestFactory.createApplicationContext(EtcdDiscoveryModule.forRoot(options), { logger: logs, abortOnError: false }))().then(
    async (app) => {
      await app.close();
      return undefined;
    },
    (caught: unknown) => caught,
  );
  return { error, logged: logs.lines.slice(from).map((line) => line.message) };
}

/** Every text a secret could leak through: message, stack, the `value` field, the cause chain, inspect(). */
function everyRendering(error: unknown): string[] {
  const texts: string[] = [String(error), inspect(error, { depth: 10, showHidden: true })];
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 10; current = current.cause, depth++) {
    texts.push(current.message, current.stack ?? '');
    if (current instanceof InvalidDiscoveryOptionsError) {
      texts.push(inspect(current.value, { depth: 10 }), JSON.stringify(current.value) ?? '', String(current.value));
    }
  }
  return texts;
}

/** The forms a secret takes in a rendering: as is, base64, hex (plain and as inspect() prints Buffers), JSON byte list. */
function forms(secret: Buffer): string[] {
  const head = secret.subarray(0, 12);
  return [
    secret.toString('latin1'),
    secret.toString('base64'),
    secret.toString('base64url'),
    secret.toString('hex'),
    [...head].map((byte) => byte.toString(16).padStart(2, '0')).join(' '),
    [...head].join(','),
  ];
}

describe('option errors', () => {
  securityCheck(4, 'etcd.tls with an http:// host refused', async ({ note }) => {
    const port = await freePort();
    const tls = { rootCertificate: caCert, privateKey: client.key, certChain: client.cert };
    for (const hosts of [[`http://127.0.0.1:${port}`], [`https://127.0.0.1:${port}`, `http://127.0.0.1:${port + 1}`]]) {
      const { error } = await startupFailure({ etcd: { hosts, tls } });
      note(`hosts ${JSON.stringify(hosts)} with etcd.tls: ${error instanceof Error ? `${error.name} (field "${(error as InvalidDiscoveryOptionsError).field}"): ${error.message}` : String(error)}`);
      expect(error).toBeInstanceOf(InvalidDiscoveryOptionsError);
      expect((error as InvalidDiscoveryOptionsError).field).toBe('etcd.tls');
    }
    // Control: the same TLS options with https hosts only start (nothing connects before a lookup).
    const { error } = await startupFailure({ etcd: { hosts: [`https://127.0.0.1:${port}`], tls } });
    note(`the same etcd.tls with https:// hosts only: ${error === undefined ? 'started' : String(error)}`);
    expect(error).toBeUndefined();
  });

  securityCheck(12, 'no secret in errors', async ({ note }) => {
    const pemText = client.key.toString();
    const privateScalar = Buffer.from(createPrivateKey(client.key).export({ format: 'jwk' }).d!, 'base64url');
    const pemBody = pemText.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    const password = `pw-${randomBytes(12).toString('hex')}`;
    // What must never show: the PEM (its base64 body, in slices as it spans lines), the key bytes, the password.
    const needles = [
      ...[0, 40, 80, 120].map((at) => pemBody.slice(at, at + 24)).filter((slice) => slice.length === 24),
      ...forms(privateScalar),
      ...forms(Buffer.from(pemText.slice(40, 80))),
      // inspect() prints only a Buffer's first 50 bytes: the PEM's first base64 bytes are what it would show.
      ...forms(Buffer.from(pemText.slice(28, 40))),
      ...forms(Buffer.from(password)),
    ];
    const leaked = (error: unknown, logged: readonly string[] = []): string[] => {
      const renderings = [...everyRendering(error), ...logged];
      return needles.filter((needle) => renderings.some((text) => text.includes(needle)));
    };
    // Controls: the detector finds each secret where a careless error would put it.
    const controls: { label: string; error: unknown; logged?: string[] }[] = [
      { label: 'PEM in the message', error: new Error(`bad key ${JSON.stringify(pemText)}`) },
      { label: 'key Buffer as the value', error: new InvalidDiscoveryOptionsError('etcd.tls.privateKey', client.key, 'fix') },
      { label: 'password in a cause', error: new Error('auth failed', { cause: new Error(`login ${password}`) }) },
      { label: 'password Buffer in a log line', error: new Error('plain'), logged: [inspect(Buffer.from(password))] },
    ];
    for (const { label, error, logged } of controls) expect(leaked(error, logged), `control: ${label}`).not.toEqual([]);
    note(`controls: the detector found the secret in ${controls.length} deliberately leaky renderings (${controls.map((control) => control.label).join(', ')})`);
    const https = { hosts: ['https://127.0.0.1:2379'] };
    const cases: Record<string, EtcdDiscoveryModuleOptions> = {
      'privateKey as a PEM string': { etcd: { ...https, tls: { rootCertificate: caCert, privateKey: pemText as unknown as Buffer, certChain: client.cert } } },
      'certChain missing': { etcd: { ...https, tls: { rootCertificate: caCert, privateKey: client.key } } },
      'the key PEM as rootCertificate string': { etcd: { ...https, tls: { rootCertificate: pemText as unknown as Buffer } } },
      'the key Buffer with an http:// host': { etcd: { hosts: ['http://127.0.0.1:2379'], tls: { rootCertificate: caCert, privateKey: client.key, certChain: client.cert } } },
      'auth with an empty username': { etcd: { auth: { username: '', password } } },
      'auth password as a Buffer': { etcd: { auth: { username: 'svc', password: Buffer.from(password) as unknown as string } } },
      'auth username not a string': { etcd: { auth: { username: 42 as unknown as string, password } } },
      'auth as a "user:password" string': { etcd: { auth: `svc:${password}` as unknown as { username: string; password: string } } },
    };
    const leaks: string[] = [];
    for (const [label, options] of Object.entries(cases)) {
      const { error, logged } = await startupFailure(options);
      expect(error, label).toBeInstanceOf(InvalidDiscoveryOptionsError);
      const found = leaked(error, logged);
      if (found.length > 0) leaks.push(`${label}: ${found.length} secret forms, e.g. in "${(error as Error).message.slice(0, 160)}"`);
      note(`${label}: field "${(error as InvalidDiscoveryOptionsError).field}", message "${(error as Error).message}"`);
    }
    note(`${Object.keys(cases).length} bad options checked against ${needles.length} forms of the key, its PEM and the password ` +
      `in the message, stack, value (inspect and JSON), cause chain and the log lines of each attempt: ${leaks.length === 0 ? 'none found' : leaks.join('; ')}`);
    expect(leaks).toEqual([]);
  });
});
