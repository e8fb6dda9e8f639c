/** What to check first, by the kind of failure `etcdError` starts with (see registry/etcd-failure.ts). */
const FIXES: ReadonlyArray<readonly [prefix: string, fix: string]> = [
  ['permission denied', "Check etcd.auth and that the etcd user's role may read the namespace prefix"],
  ['TLS failed', 'Check etcd.tls (the CA that signed etcd\'s certificate, and a client certificate if etcd requires one) and https:// hosts'],
  ['response too large', 'Something under the prefix is larger than the client accepts; inspect it with etcdctl'],
];
const UNREACHABLE_FIX = 'Check etcd.hosts and that etcd is running';

/** No instance of a service showed up in etcd within the wait timeout. */
export class NoLiveInstanceError extends Error {
  override readonly name = 'NoLiveInstanceError';

  constructor(
    readonly serviceName: string,
    readonly prefix: string,
    readonly waitedMs: number,
    /**
     * Set when etcd itself could not be listed: then the cause is not a missing instance. Starts with
     * "permission denied", "TLS failed", "response too large" or "etcd unreachable".
     */
    readonly etcdError?: string,
  ) {
    super(
      etcdError === undefined
        ? `nestjs-etcd-discovery: no live instance of service "${serviceName}" appeared in etcd under "${prefix}" ` +
            `within ${waitedMs} ms. Check that an instance is running with EtcdDiscoveryModule registration, ` +
            'and that both apps use the same etcd hosts and namespace.'
        : `nestjs-etcd-discovery: no live instance of service "${serviceName}" could be looked up within ${waitedMs} ms: ` +
            `listing "${prefix}" in etcd failed (${etcdError}). ` +
            `${FIXES.find(([kind]) => etcdError.startsWith(kind))?.[1] ?? UNREACHABLE_FIX}; discovery keeps retrying.`,
    );
  }
}
