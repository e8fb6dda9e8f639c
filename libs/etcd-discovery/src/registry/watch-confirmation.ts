/** A watch etcd has not confirmed by then, while no other watch of the same client got confirmed either, is given up. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** A watch still unconfirmed after this is given up even while others make progress: the stream may be stuck. */
export const CONFIRM_LIMIT_MS = 60_000;

/**
 * When a watch of each client was last confirmed. etcd3 sends the create requests of one client's watches
 * one at a time, each waiting for the previous confirmation: over a 60 ms link the 100th watch of a process
 * waits 100 round trips (12 s). While that queue moves, waiting is right: a watch given up and created
 * again only goes to the back of the queue.
 */
const lastConfirmedAt = new WeakMap<object, number>();

export interface ConfirmationTimer {
  /** The watch got confirmed: progress for every watch of this client. */
  confirmed(): void;
  cancel(): void;
}

/**
 * Calls `giveUp` once no watch of `client` has been confirmed for CONNECT_TIMEOUT_MS since this one
 * was created, or after CONFIRM_LIMIT_MS whatever happens, unless `confirmed()` or `cancel()` comes first.
 */
export function awaitConfirmation(client: object, giveUp: () => void): ConfirmationTimer {
  const createdAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const check = (): void => {
    const now = Date.now();
    const progressAt = Math.max(createdAt, lastConfirmedAt.get(client) ?? 0);
    if (now - progressAt >= CONNECT_TIMEOUT_MS || now - createdAt >= CONFIRM_LIMIT_MS) {
      timer = undefined;
      giveUp();
      return;
    }
    timer = setTimeout(check, Math.min(progressAt + CONNECT_TIMEOUT_MS, createdAt + CONFIRM_LIMIT_MS) - now);
  };
  timer = setTimeout(check, CONNECT_TIMEOUT_MS);
  return {
    confirmed() {
      clearTimeout(timer);
      timer = undefined;
      lastConfirmedAt.set(client, Date.now());
    },
    cancel() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
}
