import { Subject } from 'rxjs';

/**
 * A `Subject` for the per-request hot path. RxJS 7's CommonJS `Subject.next` allocates a
 * closure and an iterator on every call, which shows up as garbage-collector time at hundreds
 * of thousands of requests per second. With a single observer (the usual case: the engine,
 * or the result router) this one hands the value straight to it; otherwise it behaves exactly
 * like `Subject`.
 */
export class LeanSubject<T> extends Subject<T> {
  override next(value: T): void {
    const observers = this.observers;
    if (observers.length === 1 && !this.isStopped && !this.closed) observers[0].next(value);
    else super.next(value);
  }
}
