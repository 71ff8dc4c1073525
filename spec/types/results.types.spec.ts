// Issue 14 case 8: the type of runBatch's results and what the engine accepts agree.
import { of } from 'rxjs';
import { Batcher, type BatchResults, type RunBatch } from '../../lib';

const arrayLike: RunBatch<number, string> = (xs) => ({ length: xs.length, 0: 'a', 1: 'b' });
const arrayLikeAsync: RunBatch<number, string> = async (xs) => ({ length: xs.length, 0: 'a', 1: 'b' });
const arrayLikeObservable: RunBatch<number, string> = (xs) => of<BatchResults<string>>({ length: xs.length, 0: 'a' });
void [arrayLike, arrayLikeAsync, arrayLikeObservable];
// @ts-expect-error: a string is array-like, but not taken as its characters
const fromString: RunBatch<number, string> = () => 'ab';
// @ts-expect-error: a Promise of a string neither
const fromStringAsync: RunBatch<number, string> = async () => 'ab';
void [fromString, fromStringAsync];

describe('runBatch results (types)', () => {
  it('a plain array-like object is accepted at run time too', async () => {
    const batcher = new Batcher<number, string>({ maxBatchSize: 2, runBatch: (xs) => ({ length: xs.length, 0: 'a', 1: 'b' }) });
    await expect(Promise.all([batcher.run(1), batcher.run(2)])).resolves.toEqual(['a', 'b']);
    await batcher.stop();
  });
});
