import type { Watcher } from 'etcd3';

/** Stops an etcd3 watcher we no longer want, so nothing it emits later (an error included) reaches us. */
export function discardWatcher(watcher: Watcher): void {
  watcher.removeAllListeners();
  watcher.on('error', () => undefined);
  try {
    watcher.cancel().catch(() => undefined);
  } catch {
    // etcd3 throws synchronously when its stream is between states; the watcher is gone either way.
  }
}
