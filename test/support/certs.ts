// Certificates made at test time with the system openssl, in a temp dir removed by destroy(). Nothing is checked
// in: keys in the repository would be copied into real setups, and expire. EC P-256 keys: fast to generate.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const OPENSSL = existsSync('/usr/bin/openssl') ? '/usr/bin/openssl' : 'openssl';
const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const DAYS = '2';

/** PEM contents and the files holding them (for etcd's flags). */
export interface CertifiedKey {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface IssueOptions {
  /** subjectAltName entries, e.g. ['DNS:greeter', 'IP:127.0.0.1']; none gives a certificate without SAN. */
  readonly altNames: readonly string[];
  /** Subject CN; default the file label. etcd takes it as the user name with --client-cert-auth. */
  readonly commonName?: string;
}

export interface CertificateAuthority extends CertifiedKey {
  /** A leaf certificate signed by this CA, usable as TLS server and client certificate. */
  issue(label: string, options: IssueOptions): Promise<CertifiedKey>;
}

export interface TestPki {
  readonly dir: string;
  /** A new self-signed CA; two CAs of one PKI share nothing but the directory. */
  createAuthority(label: string): Promise<CertificateAuthority>;
  destroy(): Promise<void>;
}

export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'test-pki-'));
  const file = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): Promise<unknown> => run(OPENSSL, args, { timeout: 20_000 });
  const load = async (certFile: string, keyFile: string): Promise<CertifiedKey> => ({
    cert: await readFile(certFile),
    key: await readFile(keyFile),
    certFile,
    keyFile,
  });

  async function createAuthority(label: string): Promise<CertificateAuthority> {
    const certFile = file(`${label}.pem`);
    const keyFile = file(`${label}.key`);
    await openssl('req', '-x509', ...KEY_ARGS, '-keyout', keyFile, '-out', certFile, '-days', DAYS,
      '-subj', `/CN=${label} ${randomBytes(4).toString('hex')}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    const authority = await load(certFile, keyFile);

    async function issue(leaf: string, options: IssueOptions): Promise<CertifiedKey> {
      const leafCert = file(`${leaf}.pem`);
      const leafKey = file(`${leaf}.key`);
      const csr = file(`${leaf}.csr`);
      const extFile = file(`${leaf}.ext`);
      const extensions = [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature',
        // etcd (Go) checks the usage: a server certificate also presented as a client needs clientAuth.
        'extendedKeyUsage=serverAuth,clientAuth',
        ...(options.altNames.length > 0 ? [`subjectAltName=${options.altNames.join(',')}`] : []),
      ];
      await writeFile(extFile, `${extensions.join('\n')}\n`);
      await openssl('req', '-new', ...KEY_ARGS, '-keyout', leafKey, '-out', csr, '-subj', `/CN=${options.commonName ?? leaf}`);
      await openssl('x509', '-req', '-in', csr, '-CA', certFile, '-CAkey', keyFile, '-out', leafCert, '-days', DAYS,
        '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-extfile', extFile);
      return load(leafCert, leafKey);
    }

    return { ...authority, issue };
  }

  return {
    dir,
    createAuthority,
    destroy: () => rm(dir, { recursive: true, force: true }),
  };
}
