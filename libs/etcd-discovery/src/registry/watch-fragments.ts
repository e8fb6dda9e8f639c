import type { IWatchResponse } from 'etcd3';

type WatchEvents = IWatchResponse['events'];

/**
 * etcd splits a revision larger than a message into fragments (with the watch's `fragment` flag): they are
 * applied together with the last one, so a torn revision never shows.
 */
export class WatchFragments {
  private pending?: WatchEvents;

  /** The whole revision's events once its last fragment is in; undefined while fragments are still coming. */
  join(response: IWatchResponse): WatchEvents | undefined {
    if (response.fragment) {
      this.pending ??= [];
      for (const event of response.events) this.pending.push(event);
      return undefined;
    }
    const events = this.pending ? [...this.pending, ...response.events] : response.events;
    this.pending = undefined;
    return events;
  }

  /** A revision cut short by the end of its watch is read whole by the next listing. */
  discard(): void {
    this.pending = undefined;
  }
}
