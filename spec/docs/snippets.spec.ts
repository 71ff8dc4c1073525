import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { markdownFiles } from './markdownFiles';

// The docs site includes recipe code from the example files (VitePress `<<< @/…` imports).
// VitePress renders a missing snippet as an error message instead of failing the build, so
// these checks catch a renamed or deleted example before a reader does.
const docs = join(__dirname, '..', '..', 'docs');

/** `<<< @/../examples/x.ts` or `<<< @/../examples/x.ts#region{1-3}` → the file path, resolved from docs/. */
function snippetImports(markdown: string): string[] {
  return [...markdown.matchAll(/^<<<\s+@\/(\S+?)(?:[#{].*)?$/gm)].map((m) => join(docs, m[1]));
}

describe('docs site sources', () => {
  const pages = markdownFiles(docs);

  it('finds the pages', () => {
    expect(pages.map((p) => relative(docs, p))).toEqual(expect.arrayContaining(['index.md', join('recipes', 'operator-pipeline.md')]));
  });

  it.each(markdownFiles(join(docs, 'recipes')).map((p) => [relative(docs, p), p]))('%s: every included snippet exists', (_, page) => {
    const markdown = readFileSync(page, 'utf8');
    const imports = snippetImports(markdown);
    if (!page.endsWith('index.md') && !page.endsWith('scale-out-redis.md')) expect(imports.length).toBeGreaterThan(0);
    for (const file of imports) expect({ file: relative(docs, file), exists: existsSync(file) }).toEqual({ file: relative(docs, file), exists: true });
  });

  it.each(['operator-pipeline', 'caikit-style', 'virtual-time-testing', 'metrics'])('recipe %s shows its example code by import, not pasted', (name) => {
    const markdown = readFileSync(join(docs, 'recipes', `${name}.md`), 'utf8');
    expect(snippetImports(markdown).some((file) => file.includes(join('examples', name)))).toBe(true);
    expect(markdown).not.toMatch(/```(ts|typescript)\n/);
  });
});
