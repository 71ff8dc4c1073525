import { Outbox } from '../../lib/remote/outbox';

// The producer's outbox: what is added during one turn of the event loop is written once, at
// the end of that turn (setImmediate, faked here so each turn is stepped by hand).
describe('Outbox (one write per event-loop turn)', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());

  it('writes nothing until the turn ends, then everything added in it, in order', async () => {
    const writes: number[][] = [];
    const outbox = new Outbox<number>((items) => writes.push(items));
    outbox.add([1, 2]);
    await Promise.resolve();
    outbox.add([3]); // a later tick of the same turn
    expect(writes).toEqual([]);
    jest.runOnlyPendingTimers();
    expect(writes).toEqual([[1, 2, 3]]);
  });

  it('takes in a caller that yielded to the end of the turn before the write was due (one write, not two)', () => {
    const writes: string[][] = [];
    const outbox = new Outbox<string>((items) => writes.push(items));
    setImmediate(() => outbox.add(['late'])); // queued before the first add, as a caller yielding once is
    outbox.add(['early']);
    jest.runOnlyPendingTimers();
    expect(writes).toEqual([['early', 'late']]);
  });

  it('what comes after the write goes in the next turn\'s write', () => {
    const writes: number[][] = [];
    const outbox = new Outbox<number>((items) => writes.push(items));
    outbox.add([1]);
    jest.runOnlyPendingTimers();
    outbox.add([2]);
    outbox.add([3]);
    jest.runOnlyPendingTimers();
    expect(writes).toEqual([[1], [2, 3]]);
    jest.runOnlyPendingTimers();
    expect(writes).toHaveLength(2); // nothing added: no empty write
  });
});
