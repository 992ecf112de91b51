// Apps written by tests: a fresh app directory from file contents, and in-place edits that the dev
// server's watcher picks up.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './dev-server.js';

/** Writes `files` (name -> content) into a new temp directory and returns its path. */
export function writeApp(prefix: string, files: Readonly<Record<string, string>>): string {
  const dir = tempDir(`lockstep-app-${prefix}-`);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

/** Rewrites one file of an app directory through `edit`; returns the previous content. */
export function editAppFile(appDir: string, name: string, edit: (content: string) => string): string {
  const path = join(appDir, name);
  const before = readFileSync(path, 'utf8');
  const after = edit(before);
  if (after === before) throw new Error(`editing ${name} changed nothing`);
  // Atomically (write a temporary file, rename it over): a watcher reading the directory
  // meanwhile must see the old content or the new, never a truncated file.
  writeFileSync(`${path}.edit-tmp`, after);
  renameSync(`${path}.edit-tmp`, path);
  return before;
}
