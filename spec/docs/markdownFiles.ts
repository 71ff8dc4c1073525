import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The markdown pages of the docs site below `dir`, hand-written only: hidden folders
 * (`.vitepress`) and the TypeDoc-generated `api/` are left out.
 *
 * @example
 * ```ts
 * const pages = markdownFiles(join(repoRoot, 'docs'));
 * ```
 */
export function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name.startsWith('.') || entry.name === 'api' ? [] : markdownFiles(path);
    return entry.name.endsWith('.md') ? [path] : [];
  });
}
