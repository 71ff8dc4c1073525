/**
 * Recipe: YOUR code that uses a `Batcher`, written so it can be tested in virtual time.
 *
 * A geocoding client batches address lookups into one call of a batch API. The only thing it
 * does for testability is accept an optional RxJS `scheduler` and pass it to the `Batcher`:
 * production code leaves it out, tests pass a `TestScheduler` and control the clock.
 */
import type { Observable, SchedulerLike } from 'rxjs';
import { Batcher } from 'rx-batcher';

/** A point on the map. */
export interface LatLng {
  readonly lat: number;
  readonly lng: number;
}

/** The batch API the client calls: one request for many addresses, one answer per address. */
export type GeocodeBatchApi = (addresses: readonly string[], signal: AbortSignal) => Observable<readonly LatLng[]> | Promise<readonly LatLng[]>;

/** Options of {@link Geocoder}. */
export interface GeocoderOptions {
  /** How long a lookup waits for companions. Default 10 ms. */
  readonly maxDelayMs?: number;
  /** A lookup fails with `RequestTimeoutError` after this long. Default 100 ms. */
  readonly timeoutMs?: number;
  /** Tests pass a `TestScheduler`; production code leaves it out. */
  readonly scheduler?: SchedulerLike;
}

/**
 * Looks up addresses one at a time; the batch API receives up to 25 at once.
 *
 * @example
 * ```ts
 * const geocoder = new Geocoder((addresses) => api.geocode(addresses));
 * geocoder.lookup$('10 Downing St, London').subscribe((p) => console.log(p.lat, p.lng));
 * await geocoder.close();
 * ```
 */
export class Geocoder {
  readonly #batcher: Batcher<string, LatLng>;

  constructor(api: GeocodeBatchApi, options: GeocoderOptions = {}) {
    this.#batcher = new Batcher<string, LatLng>({
      name: 'geocoder',
      maxBatchSize: 25,
      maxDelayMs: options.maxDelayMs ?? 10,
      timeoutMs: options.timeoutMs ?? 100,
      scheduler: options.scheduler,
      runBatch: (addresses, ctx) => api(addresses, ctx.signal),
    });
  }

  /** One address in, one point out (cold: nothing is sent until you subscribe). */
  lookup$(address: string): Observable<LatLng> {
    return this.#batcher.run$(address.trim().toLowerCase());
  }

  /** How many batch API calls were made so far. */
  get apiCalls(): number {
    return this.#batcher.stats().batches;
  }

  /** Finishes queued lookups, then stops. */
  close(): Promise<void> {
    return this.#batcher.stop({ drain: true });
  }
}
