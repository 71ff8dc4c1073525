/**
 * Recipe: testing your own code that uses a Batcher, in virtual time.
 *
 * `Geocoder` (examples/virtual-time-testing/geocoder.ts) passes its `scheduler` option on to
 * its `Batcher`. Here that scheduler is an RxJS `TestScheduler`: inside `run()`, the batch
 * window (`maxDelayMs`), the deadline (`timeoutMs`) and the fake API's latency all run on the
 * virtual clock, so each test is instant and exact to the millisecond.
 */
import { NEVER, map, mergeMap, timer, type SchedulerLike } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { RequestTimeoutError } from '../../lib';
import { Geocoder, type LatLng } from '../../examples/virtual-time-testing/geocoder';

/** A fake batch API: answers after `latencyMs` on `clock`, and records each call's addresses. */
function fakeApi(latencyMs: number, clock: SchedulerLike) {
  const calls: string[][] = [];
  const api = (addresses: readonly string[]) => {
    calls.push([...addresses]);
    return timer(latencyMs, clock).pipe(map(() => addresses.map((a): LatLng => ({ lat: a.length, lng: 0 }))));
  };
  return { api, calls };
}

describe('recipe: testing a Batcher user with TestScheduler', () => {
  let scheduler: TestScheduler;
  beforeEach(() => {
    scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
  });

  it('batches lookups made within maxDelayMs into one API call', () => {
    const { api, calls } = fakeApi(20, scheduler);
    const geocoder = new Geocoder(api, { maxDelayMs: 10, scheduler });

    scheduler.run(({ cold, expectObservable }) => {
      // Two lookups 5 ms apart share a window that closes 10 ms after the first one.
      const lookups = cold('a 4ms b|', { a: 'Main St', b: 'High Street' });
      const points = lookups.pipe(mergeMap((address) => geocoder.lookup$(address)));
      // Window closes at 10, the API answers 20 ms later: both points arrive at 30.
      expectObservable(points).toBe('30ms (pq|)', { p: { lat: 7, lng: 0 }, q: { lat: 11, lng: 0 } });
    });

    expect(calls).toEqual([['main st', 'high street']]);
  });

  it('while a batch runs, new lookups wait and go out together when it finishes (late sealing)', () => {
    const { api, calls } = fakeApi(20, scheduler);
    const geocoder = new Geocoder(api, { maxDelayMs: 10, scheduler });

    scheduler.run(({ cold, expectObservable }) => {
      // a at 0 → batch [a] runs 10..30. b at 12 and c at 25 would have their own windows,
      // but the only slot is busy until 30: then one batch [b, c] runs 30..50.
      const lookups = cold('a 11ms b 12ms c|', { a: 'A', b: 'BB', c: 'CCC' });
      const points = lookups.pipe(mergeMap((address) => geocoder.lookup$(address), 3));
      expectObservable(points).toBe('30ms p 19ms (qr|)', { p: { lat: 1, lng: 0 }, q: { lat: 2, lng: 0 }, r: { lat: 3, lng: 0 } });
    });

    expect(calls).toEqual([['a'], ['bb', 'ccc']]);
  });

  it('fails a lookup with RequestTimeoutError exactly at its deadline when the API hangs', () => {
    const geocoder = new Geocoder(() => NEVER, { maxDelayMs: 10, timeoutMs: 100, scheduler });

    scheduler.run(({ expectObservable }) => {
      const error = new RequestTimeoutError('geocoder', 100, 'running');
      expectObservable(geocoder.lookup$('Nowhere')).toBe('100ms #', undefined, error);
    });
  });

  it('unsubscribing before the window closes removes the lookup: the API never sees it', () => {
    const { api, calls } = fakeApi(20, scheduler);
    const geocoder = new Geocoder(api, { maxDelayMs: 10, scheduler });

    scheduler.run(({ expectObservable }) => {
      // Subscribed at 0, unsubscribed at 5: before its batch is sealed at 10.
      expectObservable(geocoder.lookup$('Gone'), '^ 4ms !').toBe('');
      expectObservable(geocoder.lookup$('Stays')).toBe('30ms (p|)', { p: { lat: 5, lng: 0 } });
    });

    expect(calls).toEqual([['stays']]);
  });

  it('close() drains what is queued, on the same virtual clock', async () => {
    const { api, calls } = fakeApi(20, scheduler);
    const geocoder = new Geocoder(api, { maxDelayMs: 10, scheduler });
    const seen: LatLng[] = [];
    geocoder.lookup$('Late').subscribe((p) => seen.push(p));

    const closed = geocoder.close(); // dispatches at once (reason 'drain'), waits for the API
    scheduler.flush(); // runs the virtual clock until nothing is scheduled
    await closed;

    expect(seen).toEqual([{ lat: 4, lng: 0 }]);
    expect(calls).toEqual([['late']]);
  });
});
