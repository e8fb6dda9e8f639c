// An outsider's view of the registry: a plain etcd watch from the test process, timestamping every event.
import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { epochNow } from '../support/processes.js';

export interface RegistryEvent {
  type: 'put' | 'delete';
  key: string;
  value: string;
  /** epochNow() when the event reached this process. */
  at: number;
}

export class RegistryWatch {
  readonly events: RegistryEvent[] = [];
  private readonly listeners = new Set<() => void>();

  private constructor(
    private readonly client: Etcd3,
    private readonly watcher: Watcher,
  ) {
    const record = (type: RegistryEvent['type']) => (kv: IKeyValue) => {
      this.events.push({ type, key: kv.key.toString(), value: kv.value.toString(), at: epochNow() });
      for (const listener of this.listeners) listener();
    };
    watcher.on('put', record('put'));
    watcher.on('delete', record('delete'));
    watcher.on('error', (error) => console.error(`registry watch error: ${String(error)}`));
  }

  /** Watches `prefix` from now on (events before the watch is established are not seen). */
  static async open(endpoint: string, prefix: string): Promise<RegistryWatch> {
    const client = new Etcd3({ hosts: endpoint });
    const watcher = await client.watch().prefix(prefix).create();
    return new RegistryWatch(client, watcher);
  }

  /** The first event (already seen or still to come) matching `match`. */
  waitFor(what: string, match: (event: RegistryEvent) => boolean, timeoutMs: number): Promise<RegistryEvent> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.find(match);
        if (found) finish(() => resolve(found));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`registry: no ${what} within ${timeoutMs} ms`))), timeoutMs);
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      this.listeners.add(check);
      check();
    });
  }

  waitForPut(key: string, timeoutMs: number): Promise<RegistryEvent> {
    return this.waitFor(`put of ${key}`, (event) => event.type === 'put' && event.key === key, timeoutMs);
  }

  waitForDelete(key: string, timeoutMs: number): Promise<RegistryEvent> {
    return this.waitFor(`delete of ${key}`, (event) => event.type === 'delete' && event.key === key, timeoutMs);
  }

  async close(): Promise<void> {
    await this.watcher.cancel().catch(() => undefined);
    this.client.close();
  }
}
