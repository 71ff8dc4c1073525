/**
 * `rx-batcher/dataloader`: a drop-in `DataLoader` (the API of the `dataloader` package, 2.2.3)
 * on rx-batcher's batching engine. Like `require('dataloader')`, the module *is* the class;
 * it is also its `DataLoader` export.
 *
 * @example
 * ```ts
 * import DataLoader from 'rx-batcher/dataloader'; // was: import DataLoader from 'dataloader';
 * const users = new DataLoader<number, User>((ids) => db.usersByIds(ids));
 * ```
 *
 * (TypeDoc documents the module from ./DataLoader.ts, which names the class rather than `export =`.)
 */
import { DataLoader } from './DataLoader.js';

export = DataLoader;

// Node finds the names an ES module may import from a CommonJS one by scanning its source for
// `module.exports.name = …`: this line lets `import { DataLoader } from 'rx-batcher/dataloader'`
// work there. Whichever object it lands on (tsc emits `export =` last), the class's static
// `DataLoader` is the value imported.
module.exports.DataLoader = DataLoader;
