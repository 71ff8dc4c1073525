/**
 * `npm run test:browser`: opens the BUILT docs site in Debian's Chromium (driven by
 * playwright-core) and walks Home → Guide → a recipe → an API page, the way a reader would:
 * by clicking. On every page it checks the heading, that code blocks are present where they
 * should be, and that nothing logged a console error or failed a request. Then it loads each
 * page directly (server-rendered HTML + hydration) with the same checks. Screenshots go to
 * spec/browser/screenshots/ (git-ignored).
 *
 * Needs `/usr/bin/chromium` (`apt-get install -y chromium`); builds the site first if
 * docs/.vitepress/dist is missing. Exits non-zero on the first failed check.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { serveStatic, type StaticSite } from './staticServer';

const repo = join(__dirname, '..', '..');
const dist = join(repo, 'docs', '.vitepress', 'dist');
const screenshots = join(__dirname, 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** One stop of the walk: where we expect to land and what the page must show. */
interface Stop {
  readonly name: string;
  readonly path: string;
  readonly heading: string;
  /** The fewest code blocks the page must render. */
  readonly minCodeBlocks: number;
}

const STOPS: readonly Stop[] = [
  { name: 'home', path: '/', heading: 'rx-batcher', minCodeBlocks: 2 },
  { name: 'guide', path: '/guide/getting-started', heading: 'Getting started', minCodeBlocks: 3 },
  { name: 'recipe', path: '/recipes/operator-pipeline', heading: 'batchMap in a stream pipeline', minCodeBlocks: 3 },
  { name: 'api', path: '/api/rx-batcher/classes/Batcher', heading: 'Class: Batcher<I, O>', minCodeBlocks: 2 },
];

/** Pages loaded only directly: the Benchmarks page renders build-time data (present or not). */
const DIRECT_ONLY: readonly Stop[] = [
  { name: 'benchmarks', path: '/benchmarks', heading: 'Benchmarks', minCodeBlocks: 0 },
  { name: 'comparison', path: '/guide/comparison', heading: 'Compared with other batchers', minCodeBlocks: 0 },
];

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`browser test failed: ${message}`);
}

/** Collects console errors, page errors and failed requests of one page. */
function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (msg) => msg.type() === 'error' && problems.push(`console error: ${msg.text()}`));
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} (${req.failure()?.errorText})`));
  page.on('response', (res) => res.status() >= 400 && problems.push(`HTTP ${res.status()}: ${res.url()}`));
  return problems;
}

async function checkStop(page: Page, stop: Stop, problems: string[], label: string): Promise<void> {
  await page.waitForURL((url) => url.pathname.replace(/\.html$/, '') === stop.path, { timeout: 10_000 });
  const h1 = page.locator('.vp-doc h1, .VPHero h1').first();
  await h1.waitFor({ timeout: 10_000 });
  const heading = (await h1.innerText()).replace(/\u200b/g, '').replace(/\s+/g, ' ').trim();
  check(heading.startsWith(stop.heading), `${label}: heading ${JSON.stringify(heading)}, expected ${JSON.stringify(stop.heading)}`);
  const codeBlocks = await page.locator('div[class*="language-"] pre code').count();
  check(codeBlocks >= stop.minCodeBlocks, `${label}: ${codeBlocks} code blocks, expected at least ${stop.minCodeBlocks}`);
  await page.waitForLoadState('networkidle');
  check(problems.length === 0, `${label}: ${problems.join('; ')}`);
  await page.screenshot({ path: join(screenshots, `${label}.png`), fullPage: stop.name === 'home' });
  console.log(`  ok  ${label.padEnd(16)} ${stop.path.padEnd(28)} "${heading}", ${codeBlocks} code blocks`);
}

/** Home → Guide → a recipe → an API page, by clicking links like a reader. */
async function walkByClicking(browser: Browser, site: StaticSite): Promise<void> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = watchProblems(page);
  const [home, guide, recipe, api] = STOPS;

  await page.goto(site.url + home.path);
  await checkStop(page, home, problems, '1-home');
  const diagram = await page.locator('img[src$="pipeline.svg"]').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0);
  check(diagram, 'home: the pipeline diagram did not load');

  await page.locator('.VPHero a', { hasText: 'Get started' }).click();
  await checkStop(page, guide, problems, '2-guide');

  await page.locator('.VPNavBar a', { hasText: 'Recipes' }).first().click();
  await page.locator('.vp-doc a', { hasText: 'batchMap in a stream pipeline' }).first().click();
  await checkStop(page, recipe, problems, '3-recipe');

  await page.locator('.VPNavBar a', { hasText: 'API' }).first().click();
  await page.locator('.vp-doc a', { hasText: /^rx-batcher$/ }).first().click(); // the core module
  await page.locator('.vp-doc a', { hasText: /^Batcher$/ }).first().click();
  await checkStop(page, api, problems, '4-api');
  await page.close();
}

/** Each page loaded directly: the server-rendered HTML must hydrate without errors. */
async function loadDirectly(browser: Browser, site: StaticSite): Promise<void> {
  for (const stop of [...STOPS, ...DIRECT_ONLY]) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = watchProblems(page);
    await page.goto(site.url + stop.path);
    await checkStop(page, stop, problems, `direct-${stop.name}`);
    await page.close();
  }
}

async function main(): Promise<void> {
  check(existsSync(CHROMIUM), `${CHROMIUM} not found: install Debian's Chromium with "apt-get install -y chromium" (or set CHROMIUM_PATH)`);
  if (!existsSync(join(dist, 'index.html'))) {
    console.log('docs/.vitepress/dist is missing: building the site first (npm run docs:build)');
    const build = spawnSync('npm', ['run', 'docs:build'], { cwd: repo, stdio: 'inherit' });
    check(build.status === 0, 'npm run docs:build failed');
  }
  mkdirSync(screenshots, { recursive: true });

  const started = performance.now();
  const site = await serveStatic(dist);
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    console.log(`Docs site at ${site.url}, Chromium ${browser.version()}`);
    await walkByClicking(browser, site);
    await loadDirectly(browser, site);
  } finally {
    await browser?.close();
    await site.close();
  }
  console.log(`Browser test passed in ${((performance.now() - started) / 1000).toFixed(1)} s; screenshots in spec/browser/screenshots/`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
