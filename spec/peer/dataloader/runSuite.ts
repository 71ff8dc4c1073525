/**
 * Runs one file of DataLoader's own test suite (copied verbatim into `__tests__/`, see
 * README.md) twice: against `rx-batcher/dataloader` and against the `dataloader` package
 * itself. Each run registers the file's tests in a fresh module registry, under a `describe`
 * naming the library, so a failure says whether the drop-in or the suite (Jest 30, this
 * setup) is at fault: a test that fails for `dataloader` too is not the drop-in's.
 *
 * One spec file per suite file, because some of them change globals before loading the library
 * (browser.test.js removes `process.nextTick`), and each spec file has its own globals.
 */
/**
 * The two libraries the suite judges, and the value of PEER_DATALOADER that selects each in ./index.js.
 *
 * @example
 * ```ts
 * TARGETS.map((t) => t.label); // ['rx-batcher/dataloader', 'dataloader 2.2.3 (the package itself)']
 * ```
 */
export const TARGETS = [
  { label: 'rx-batcher/dataloader', env: 'rx-batcher' },
  { label: 'dataloader 2.2.3 (the package itself)', env: 'dataloader' },
] as const;

/**
 * Registers the tests of one suite file once per library in {@link TARGETS}.
 *
 * @example
 * ```ts
 * runSuite('./__tests__/abuse.test.js');
 * ```
 */
export function runSuite(file: string): void {
  for (const target of TARGETS) {
    describe(target.label, () => {
      jest.isolateModules(() => {
        // Read by ./index.js, which the suite's `require('..')` reaches, while the file loads.
        process.env.PEER_DATALOADER = target.env;
        try {
          require(file);
        } finally {
          delete process.env.PEER_DATALOADER;
        }
      });
    });
  }
}
