// An app directory read into a bundle: its files and the sha256 of their canonical form.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bundle } from '../model/app-entries.js';

export const bundleFileNames = ['schema.graphql', 'config.yaml', 'resources.ts', 'resources.js'] as const;
/** A bundle travels inside one log entry; keep it far below any message size limit. */
export const bundleBytesMax = 4 * 1024 * 1024;

export class BundleError extends Error {}

export async function readBundle(dir: string): Promise<Bundle> {
  const files: Record<string, string> = {};
  let totalBytes = 0;
  for (const name of bundleFileNames) {
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info === undefined || !info.isFile()) continue;
    totalBytes += info.size;
    if (totalBytes > bundleBytesMax) throw new BundleError(`app bundle exceeds ${bundleBytesMax} bytes`);
    files[name] = await readFile(path, 'utf8');
  }
  if (files['schema.graphql'] === undefined) throw new BundleError(`${dir} has no schema.graphql`);
  if (files['resources.ts'] !== undefined && files['resources.js'] !== undefined) {
    throw new BundleError(`${dir} has both resources.ts and resources.js; keep one`);
  }
  return { hash: bundleHash(files), files };
}

/** sha256 over the files sorted by name, each framed by its name and length, so that moving bytes
 *  from one file to another changes the hash. */
export function bundleHash(files: Readonly<Record<string, string>>): string {
  const hash = createHash('sha256');
  for (const name of Object.keys(files).sort()) {
    const content = Buffer.from(files[name] ?? '', 'utf8');
    hash.update(`${name}\0${content.length}\0`);
    hash.update(content);
  }
  return hash.digest('hex');
}
