// lockstep dev follows every kind of edit: files replaced by rename (mv, sed -i, editors that save
// that way), deleted files, and refuses a change of the app's name with a message instead of
// claiming to serve it.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeApp } from '../support/app-files.js';
import { removeDir, startDevServer, tempDir, type DevServer } from '../support/dev-server.js';

const schema = 'type Item @table @export(name: "Item") {\n  id: ID @primaryKey\n  name: String\n}\n';
const resources = (answer: string): string => `import { Resource } from 'lockstep';\nexport class Hello extends Resource {\n  async get() { return { answer: '${answer}' }; }\n}\n`;
const appDir = writeApp('watch', { 'config.yaml': 'name: watched\n', 'schema.graphql': schema, 'resources.ts': resources('one') });
const dataDir = tempDir('lockstep-watch-');
let server: DevServer;

beforeAll(async () => {
  server = await startDevServer(appDir, dataDir);
});

afterAll(async () => {
  await server.stop();
  removeDir(appDir);
  removeDir(dataDir);
});

/** Replaces a file the way `mv` and `sed -i` do: a new file renamed over the old one. */
function replaceByRenameIn(dir: string, name: string, content: string): void {
  const temporary = join(dir, `.${name}.tmp`);
  writeFileSync(temporary, content);
  renameSync(temporary, join(dir, name));
}

function replaceByRename(name: string, content: string): void {
  replaceByRenameIn(appDir, name, content);
}

async function helloAnswer(): Promise<unknown> {
  const response = await fetch(`${server.url}/Hello/`);
  return response.status === 200 ? ((await response.json()) as { answer: string }).answer : response.status;
}

async function eventually(probe: () => Promise<unknown>, expected: unknown, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    last = await probe();
    if (last === expected) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`expected ${String(expected)}, still ${String(last)} after ${timeoutMs} ms`);
}

describe('lockstep dev watching the app directory', () => {
  it('deploys edits made by rename, again and again, and a deleted resources.ts', async () => {
    expect(await helloAnswer()).toBe('one');
    replaceByRename('resources.ts', resources('two'));
    await eventually(helloAnswer, 'two');
    // The watch must not go blind to the file that replaced the original.
    replaceByRename('resources.ts', resources('three'));
    await eventually(helloAnswer, 'three');
    rmSync(join(appDir, 'resources.ts'));
    await eventually(helloAnswer, 404);
  });

  it('refuses to rename the app while it runs, and keeps serving under the old name', async () => {
    replaceByRename('config.yaml', 'name: renamed\n');
    await server.waitForOutput(/app name changed from 'watched' to 'renamed'/);
    expect((await fetch(`${server.url}/Item/`)).status).toBe(200);
    expect((await fetch(`${server.base}/renamed/Item/`)).status).toBe(404);
  });

  it('with --allow-breaking, deploys a breaking schema change and lists what it breaks', async () => {
    const breakingApp = writeApp('breaking', {
      'schema.graphql': 'type Thing @table @export(name: "Thing") {\n  id: ID @primaryKey\n  name: String\n  color: String @indexed\n}\n',
    });
    const breakingData = tempDir('lockstep-breaking-');
    const allowed = await startDevServer(breakingApp, breakingData, 0, ['--allow-breaking']);
    try {
      expect((await fetch(`${allowed.url}/Thing/a`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"a","color":"red"}' })).status).toBe(204);
      replaceByRenameIn(breakingApp, 'schema.graphql', 'type Thing @table @export(name: "Thing") {\n  id: ID @primaryKey\n  name: String!\n}\n');
      const line = await allowed.waitForOutput(/version 2 active at index/);
      expect(line).toMatch(/BREAKING: .*color/);
      // The record is still there; the new rules apply to writes from now on.
      expect((await fetch(`${allowed.url}/Thing/a`)).status).toBe(200);
      expect((await fetch(`${allowed.url}/Thing/b`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(400);
    } finally {
      await allowed.stop();
      removeDir(breakingApp);
      removeDir(breakingData);
    }
  });
});
