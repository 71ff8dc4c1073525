import { Observable, type Subscriber } from 'rxjs';
import { BatchEngine } from '../core/batchEngine.js';
import { EngineRequest } from '../core/request.js';
import type { BatchConfig } from '../core/config.js';

/** Receives settled requests in source order. */
type OrderedEmit<I, O, R> = (subscriber: Subscriber<R>, request: EngineRequest<I, O>) => void;

/** A source value on its way through the engine, with its position in the source. */
class SequencedRequest<I, O> extends EngineRequest<I, O> {
  constructor(
    input: I,
    readonly seq: number,
    private readonly reorder: Reorder<I, O>,
  ) {
    super(input);
  }

  deliver(): void {
    this.reorder.arrived(this);
  }
}

/** Holds results that finished early until every earlier one has been emitted. */
class Reorder<I, O> {
  next = 0;
  private readonly early = new Map<number, SequencedRequest<I, O>>();

  constructor(private readonly emit: (request: SequencedRequest<I, O>) => void) {}

  arrived(request: SequencedRequest<I, O>): void {
    if (request.seq !== this.next) {
      this.early.set(request.seq, request);
      return;
    }
    this.next++;
    this.emit(request);
    let waiting: SequencedRequest<I, O> | undefined;
    while (this.early.size > 0 && (waiting = this.early.get(this.next)) !== undefined) {
      this.early.delete(this.next);
      this.next++;
      this.emit(waiting);
    }
  }
}

/**
 * The operator face of the engine: each source value becomes a request; settlements are
 * emitted in source order, whatever order batches finish in. On source completion everything
 * queued is dispatched (`'drain'`) and the output completes after the last result. A source
 * error is forwarded at once; unsubscribing aborts running batches and cancels timers.
 */
export function orderedBatching<I, O, R>(
  source: Observable<I>,
  config: BatchConfig<I, O>,
  emit: OrderedEmit<I, O, R>,
): Observable<R> {
  return new Observable<R>((subscriber) => {
    const engine = new BatchEngine<I, O>(config);
    let submitted = 0;
    let sourceDone = false;
    const reorder = new Reorder<I, O>((request) => {
      emit(subscriber, request);
      if (sourceDone && reorder.next === submitted) subscriber.complete();
    });
    subscriber.add(() => engine.dispose());
    subscriber.add(engine.settled$.subscribe((request) => request.deliver()));
    subscriber.add(
      source.subscribe({
        next: (value) => engine.submit(new SequencedRequest<I, O>(value, submitted++, reorder)),
        error: (error: unknown) => subscriber.error(error),
        complete: () => {
          sourceDone = true;
          if (reorder.next === submitted) subscriber.complete();
          else void engine.stop(true);
        },
      }),
    );
  });
}
