import { Subscription, type SchedulerAction, type SchedulerLike } from 'rxjs';

/**
 * When DataLoader's batches close, as an RxJS scheduler: the engine opens a window with
 * `maxDelayMs: 0` and this scheduler decides when "0 ms later" is. The engine's windows, cuts
 * and slots stay the engine's; only the moment a window closes is DataLoader's.
 *
 * By default that moment is DataLoader's: after the promise jobs of the current tick, then one
 * `process.nextTick` more, so loads issued across several promise hops in one tick share a batch
 * (without `process.nextTick`, as in a browser: `setImmediate`, else `setTimeout`). With
 * `batchScheduleFn` it is whenever that function calls the callback it was given.
 *
 * @param thrown - told when `batchScheduleFn` throws (the loader rethrows it from `load()`, as
 * DataLoader does); that batch then closes on the default timing, so no load is left waiting.
 *
 * @example
 * ```ts
 * const windows = dataLoaderScheduler(undefined, loader, rethrowLater); // DataLoader's default timing
 * windows.schedule(() => console.log('the batch closes now'));
 * ```
 */
export function dataLoaderScheduler(
  batchScheduleFn: ((callback: () => void) => void) | undefined,
  loader: object,
  thrown: (error: unknown) => void,
): CallbackScheduler {
  return new CallbackScheduler(batchScheduleFn === undefined ? enqueuePostPromiseJob : viaBatchScheduleFn(batchScheduleFn, loader, thrown));
}

/**
 * A `SchedulerLike` over a function that runs a callback "soon": `schedule(work)` hands it a
 * callback that runs `work` once, unless the returned subscription was closed first. A delay
 * above 0 (the engine never asks for one here) waits that long on a timer first.
 *
 * @example
 * ```ts
 * const nextTick = new CallbackScheduler((callback) => process.nextTick(callback));
 * nextTick.schedule(() => console.log('soon')).unsubscribe(); // cancelled: never runs
 * ```
 */
export class CallbackScheduler implements SchedulerLike {
  constructor(
    /** Runs the callback it is given at the moment a batch closes. */
    private readonly enqueue: (callback: () => void) => void,
  ) {}

  now(): number {
    return Date.now();
  }

  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay = 0, state?: T): Subscription {
    const action = new CallbackAction<T>(this, work, state);
    const run = (): void => action.run();
    if (delay > 0) setTimeout(() => this.enqueue(run), delay);
    else this.enqueue(run);
    return action;
  }
}

/** One scheduled piece of work: runs at most once, and not at all once unsubscribed. */
class CallbackAction<T> extends Subscription implements SchedulerAction<T> {
  #ran = false;

  constructor(
    private readonly scheduler: CallbackScheduler,
    private readonly work: (this: SchedulerAction<T>, state?: T) => void,
    private readonly state: T | undefined,
  ) {
    super();
  }

  run(): void {
    // A batchScheduleFn may call its callback more than once; the batch closes once.
    if (this.#ran || this.closed) return;
    this.#ran = true;
    this.work.call(this, this.state);
  }

  schedule(state?: T, delay?: number): Subscription {
    return this.scheduler.schedule(this.work, delay, state);
  }
}

// Private: a promise already resolved, so that `then` on it queues a promise job at once.
let resolved: Promise<void> | undefined;

/**
 * DataLoader's default moment: a promise job that queues a `process.nextTick`, so it runs after
 * every promise job of this tick, including those the current ones queue (ECMAScript runs
 * promise jobs before Node's next-tick queue is looked at again). Decided per call, so a
 * test (or a browser polyfill) that removes `process.nextTick` gets the fallbacks.
 */
function enqueuePostPromiseJob(callback: () => void): void {
  if (typeof process === 'object' && process !== null && typeof process.nextTick === 'function') {
    (resolved ??= Promise.resolve()).then(() => process.nextTick(callback));
  } else if (typeof setImmediate === 'function') {
    setImmediate(callback);
  } else {
    setTimeout(callback);
  }
}

/**
 * A user's `batchScheduleFn`, called with the loader as `this` (as DataLoader does). One that
 * calls its callback at once, inside the call, would close a window while the engine is still
 * opening it (DataLoader then dispatches an empty batch and the load never settles): here the
 * batch closes at the end of the current synchronous run instead.
 */
function viaBatchScheduleFn(
  batchScheduleFn: (callback: () => void) => void,
  loader: object,
  thrown: (error: unknown) => void,
): (callback: () => void) => void {
  return (callback) => {
    let inside = true;
    try {
      batchScheduleFn.call(loader, () => (inside ? queueMicrotask(callback) : callback()));
    } catch (error) {
      enqueuePostPromiseJob(callback);
      thrown(error);
    } finally {
      inside = false;
    }
  };
}
