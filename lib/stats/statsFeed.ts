import { defer, startWith, Subject, type Observable } from 'rxjs';

/**
 * The `stats$` of a face: the current snapshot on subscription, then a new one after every
 * change the engine reports, only while someone listens (no snapshot is built otherwise).
 *
 * @example
 * ```ts
 * const feed = new StatsFeed(() => this.stats());
 * const engine = new BatchEngine(config, { changed: () => feed.changed() });
 * this.stats$ = feed.stats$;
 * ```
 */
export class StatsFeed<S> {
  readonly stats$: Observable<S>;
  private readonly changes = new Subject<S>();

  constructor(private readonly read: () => S) {
    this.stats$ = defer(() => this.changes.pipe(startWith(this.read())));
  }

  /** The engine reported a change: listeners get a fresh snapshot. */
  changed(): void {
    if (this.changes.observed) this.changes.next(this.read());
  }

  /** The face has stopped: `stats$` completes. */
  complete(): void {
    this.changes.complete();
  }
}
