/** No instance of a service showed up in etcd within the wait timeout. */
export class NoLiveInstanceError extends Error {
  override readonly name = 'NoLiveInstanceError';

  constructor(
    readonly serviceName: string,
    readonly prefix: string,
    readonly waitedMs: number,
  ) {
    super(
      `nestjs-etcd-discovery: no live instance of service "${serviceName}" appeared in etcd under "${prefix}" ` +
        `within ${waitedMs} ms. Check that an instance is running with EtcdDiscoveryModule registration, ` +
        'and that both apps use the same etcd hosts and namespace.',
    );
  }
}
