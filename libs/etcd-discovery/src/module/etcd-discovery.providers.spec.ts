import { describe, expect, it } from 'vitest';
import { warnOnClearTextPassword } from './etcd-discovery.providers.js';
import { validateOptions } from '../options/validate-options.js';

/** Only the warning is checked here: no client is made, nothing is sent anywhere. */
function warningsFor(hosts: string[], auth = true): string[] {
  const lines: string[] = [];
  const { etcd } = validateOptions({ etcd: { hosts, ...(auth ? { auth: { username: 'svc', password: 'pw' } } : {}) } });
  warnOnClearTextPassword(etcd, { warn: (message: string) => lines.push(message) });
  return lines;
}

describe('warnOnClearTextPassword', () => {
  it('warns once, naming every plain http host off the machine', () => {
    const lines = warningsFor(['http://etcd-1.internal:2379', 'http://10.0.0.5:2379', 'http://127.0.0.1:2379']);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/sent in clear text to http:\/\/etcd-1\.internal:2379, http:\/\/10\.0\.0\.5:2379: use https:\/\//);
    expect(lines[0]).not.toContain('127.0.0.1');
    expect(lines[0]).not.toContain('pw');
  });

  it.each([
    [['http://127.0.0.1:2379', 'http://localhost:2379', 'http://[::1]:2379', 'http://127.8.9.1:2379'], true],
    [['https://etcd-1.internal:2379'], true],
    [['http://etcd-1.internal:2379'], false],
  ])('stays quiet for %j (auth %s)', (hosts, auth) => {
    expect(warningsFor(hosts, auth)).toEqual([]);
  });
});
