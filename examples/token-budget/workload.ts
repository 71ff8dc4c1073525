import { seededRandom } from '../models/seededRandom';

const OPENINGS = ['I watched this last night.', 'Saw it with friends.', 'Honestly,', 'Where to start.', 'My two cents:', 'Short version:'];
const WORDS = (
  'the film plot acting score camera cast story ending scene dialogue pacing director script ' +
  'was is felt seemed looked sounded kept made left turned ' +
  'great wonderful moving sharp clever warm gorgeous tense funny brilliant ' +
  'dull slow messy flat predictable clumsy bloated tedious forgettable confusing ' +
  'and but though while because yet so really quite rather almost never always ' +
  'cinematography screenplay performances soundtrack characterisation underwhelming extraordinary'
).split(' ');

/**
 * Mixed-length texts like the reviews a sentiment model gets: most are a line or two, some a
 * paragraph, a few a page. Deterministic for a seed. Word counts: 70% 3–20, 22% 20–80, 8% 80–300.
 *
 * @example
 * ```ts
 * const texts = reviewTexts(2000); // the same 2000 texts on every run
 * ```
 */
export function reviewTexts(count: number, seed = 1): string[] {
  const next = seededRandom(seed);
  const between = (low: number, high: number) => low + Math.floor(next() * (high - low + 1));
  return Array.from({ length: count }, () => {
    const kind = next();
    const words = kind < 0.7 ? between(3, 20) : kind < 0.92 ? between(20, 80) : between(80, 300);
    const parts = [OPENINGS[between(0, OPENINGS.length - 1)]];
    for (let i = 0; i < words; i++) parts.push(WORDS[between(0, WORDS.length - 1)] + (next() < 0.08 ? '.' : next() < 0.06 ? ',' : ''));
    return parts.join(' ');
  });
}
