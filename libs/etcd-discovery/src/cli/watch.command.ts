import type { Logger } from '@nestjs/common';
import { buildInstanceList, decodeEntry, diffInstances, type DecodedEntry } from '../discovery/instance-list.js';
import type { ServiceInstance } from '../discovery/service-instance.js';
import { PrefixMirror, type MirrorSnapshot } from '../registry/prefix-mirror.js';
import { servicePrefix } from '../registry/registry-keys.js';
import { CliError, EXIT } from './cli-errors.js';
import type { Connection } from './connection.js';
import { instanceRow } from './instance-row.js';
import { note, out } from './output.js';
import { printable } from '../common/printable.js';

export type MembershipEvent = 'present' | 'joined' | 'left' | 'changed';

export interface WatchOptions {
  readonly service: string;
  readonly json: boolean;
}

/**
 * Follows one service with the library's prefix mirror (list, then watch from the list's revision; on
 * any watch trouble list again and diff) and prints each change of the list a client would route to.
 * Resolves with the exit code: 0 on SIGINT / SIGTERM, 3 when etcd cannot be listed at the start.
 */
export function watchCommand(connection: Connection, options: WatchOptions): Promise<number> {
  const { service, json } = options;
  const prefix = servicePrefix(connection.options.namespace, service);
  const client = connection.connect();
  let listed: readonly ServiceInstance[] | undefined;
  return new Promise<number>((resolve, reject) => {
    const finish = (settle: () => void): void => {
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
      mirror.stop();
      client.close();
      settle();
    };
    const interrupted = (): void => finish(() => resolve(EXIT.ok));
    const print = (event: MembershipEvent, instance: ServiceInstance): void => {
      const row = instanceRow(service, instance);
      if (json) out(JSON.stringify({ time: new Date().toISOString(), event, ...row }));
      else {
        const details = [`id=${row.id}`, row.zone !== null && `zone=${row.zone}`, row.version !== null && `version=${row.version}`, `weight=${row.weight}`];
        out(printable(`${new Date().toISOString()} ${event.padEnd(7)} ${service} ${row.address} ${details.filter(Boolean).join(' ')}`, 1_000));
      }
    };
    const changed = (snapshot: MirrorSnapshot<DecodedEntry>): void => {
      const { instances } = buildInstanceList(snapshot, connection.policy);
      if (listed === undefined) {
        for (const instance of instances) print('present', instance);
        note(`watching ${prefix}: ${instances.length} instance${instances.length === 1 ? '' : 's'} present; Ctrl-C to stop`);
      } else {
        const diff = diffInstances(listed, instances);
        for (const instance of diff.removed) print('left', instance);
        for (const instance of diff.added) print('joined', instance);
        for (const instance of diff.changed) print('changed', instance);
      }
      listed = instances;
    };
    const mirror = new PrefixMirror<DecodedEntry>(client, {
      prefix,
      decode: (key, kv) => decodeEntry(prefix, key, kv.value, connection.policy),
      onChange: changed,
      onListFailed: (reason) => {
        if (listed !== undefined) return;
        finish(() => reject(new CliError(`cannot read etcd at ${connection.options.etcd.hosts.join(',')}: ${reason}`, EXIT.etcd)));
      },
      // Before the first list, a failure ends the command with its own message: the mirror's would repeat it.
      logger: stderrLogger(() => listed !== undefined),
    });
    process.on('SIGINT', interrupted);
    process.on('SIGTERM', interrupted);
    mirror.start();
  });
}

/** The mirror reports lost watches, resyncs and skipped keys through a Nest-style logger: here, stderr. */
function stderrLogger(enabled: () => boolean): Logger {
  const line = (prefix: string) => (message: string) => {
    if (enabled()) note(`${prefix}${message}`);
  };
  return { log: line(''), warn: line('warning: '), error: line('error: ') } as unknown as Logger;
}
