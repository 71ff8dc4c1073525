/**
 * `npm run test:browser` (second part): the package's root entry in a browser. A page bundled
 * with esbuild from the built ES module entry (dist/esm, as a bundler resolves `rx-batcher`)
 * runs `Batcher` and `batchMap` with a fake model in Debian's Chromium (playwright-core), and
 * must produce the expected results with no console or page error. Then it measures the root
 * entry's bundle size (minified + gzip, rxjs left out as the app's own dependency) and checks
 * that the README states it (within 15%: it moves a little with every change).
 *
 * Needs `/usr/bin/chromium`; builds the package first if dist/esm is missing. Exits non-zero
 * on the first failed check.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { serveStatic } from './staticServer';

const repo = join(__dirname, '..', '..');
const esmEntry = join(repo, 'dist', 'esm', 'index.js');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TIMEOUT_MS = 30_000;

function fail(message: string): never {
  console.error(`bundle test FAILED: ${message}`);
  process.exit(1);
}

async function main(): Promise<void> {
  if (!existsSync(esmEntry)) {
    const built = spawnSync('npm', ['run', 'build'], { cwd: repo, stdio: 'inherit' });
    if (built.status !== 0) fail('npm run build failed');
  }
  const site = mkdtempSync(join(tmpdir(), 'rx-batcher-bundle-'));
  try {
    // 1. The page, as an app would bundle it (rxjs included: the page needs it to run).
    await build({
      entryPoints: [join(__dirname, 'bundle', 'page.ts')],
      bundle: true, format: 'esm', platform: 'browser', target: 'es2022', minify: true,
      outfile: join(site, 'page.js'),
      alias: { 'rx-batcher': esmEntry },
      logLevel: 'error',
    });
    writeFileSync(join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><title>rx-batcher in a browser</title><link rel="icon" href="data:,"><script type="module" src="/page.js"></script>');
    const server = await serveStatic(site);
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'], timeout: 60_000 });
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('console', (msg) => msg.type() === 'error' && problems.push(`console error: ${msg.text()}`));
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      await page.goto(`${server.url}/`, { timeout: TIMEOUT_MS });
      await page.waitForFunction(() => {
        const w = window as unknown as { rxBatcherResult?: unknown; rxBatcherError?: string };
        return w.rxBatcherResult !== undefined || w.rxBatcherError !== undefined;
      }, undefined, { timeout: TIMEOUT_MS });
      const { result, error } = await page.evaluate(() => {
        const w = window as unknown as { rxBatcherResult?: unknown; rxBatcherError?: string };
        return { result: w.rxBatcherResult, error: w.rxBatcherError };
      });
      if (error !== undefined) fail(`the page threw: ${error}`);
      const expected = {
        results: [1, 4, 9, 16, 25, 36, 49, 64, 81, 100],
        sizes: [4, 4, 2],
        mapped: [1, 4, 9, 16, 25, 36, 49],
        stats: { batches: 3, succeeded: 10 },
      };
      if (JSON.stringify(result) !== JSON.stringify(expected)) fail(`the page saw ${JSON.stringify(result)}, expected ${JSON.stringify(expected)}`);
      if (problems.length > 0) fail(problems.join('; '));
      console.log('bundle test: Batcher and batchMap ran in Chromium from the ES module entry, results as expected');
    } finally {
      await browser?.close();
      await server.close();
    }

    // 2. The root entry's own size: everything it pulls in, except rxjs (the app has it anyway).
    const sized = await build({
      stdin: { contents: "export * from 'rx-batcher';", resolveDir: repo, loader: 'js' },
      bundle: true, format: 'esm', platform: 'browser', target: 'es2022', minify: true, write: false,
      alias: { 'rx-batcher': esmEntry },
      external: ['rxjs', 'rxjs/*'],
      logLevel: 'error',
    });
    const code = sized.outputFiles[0].contents;
    const kb = (gzipSync(code, { level: 9 }).byteLength / 1024).toFixed(1);
    console.log(`root entry: ${(code.byteLength / 1024).toFixed(1)} kB minified, ${kb} kB minified + gzip (without rxjs)`);
    const readme = readFileSync(join(repo, 'README.md'), 'utf8');
    const stated = /(\d+(?:\.\d+)?) kB minified \+ gzip/.exec(readme);
    if (stated === null) fail('the README does not state the bundle size ("N kB minified + gzip")');
    const ratio = Number(kb) / Number(stated[1]);
    if (ratio < 0.85 || ratio > 1.15) fail(`the README says ${stated[1]} kB minified + gzip; the build measures ${kb} kB: update the README`);
  } finally {
    rmSync(site, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => fail(error instanceof Error ? (error.stack ?? error.message) : String(error)));
