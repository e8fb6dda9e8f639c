/** No instance of a service showed up in etcd within the wait timeout. */
export class NoLiveInstanceError extends Error {
  override readonly name = 'NoLiveInstanceError';

  constructor(
    readonly serviceName: string,
    readonly prefix: string,
    readonly waitedMs: number,
    /** Set when etcd itself could not be reached: then the cause is not a missing instance. */
    readonly etcdError?: string,
  ) {
    super(
      etcdError === undefined
        ? `nestjs-etcd-discovery: no live instance of service "${serviceName}" appeared in etcd under "${prefix}" ` +
            `within ${waitedMs} ms. Check that an instance is running with EtcdDiscoveryModule registration, ` +
            'and that both apps use the same etcd hosts and namespace.'
        : `nestjs-etcd-discovery: no live instance of service "${serviceName}" could be looked up within ${waitedMs} ms: ` +
            `etcd could not be reached (${etcdError}). Check etcd.hosts and that etcd is running; discovery keeps retrying.`,
    );
  }
}
