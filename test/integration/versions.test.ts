// App versions in dev mode, on a real `lockstep dev` process: an edit of the app directory goes
// through Stage/Prepare/Activate. Additive schema changes switch under load with no failed request
// and a clean cut at the activation index; broken edits are refused with a reason while the old
// version keeps serving; a restart comes back on the active version with all data.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editAppFile } from '../support/app-files.js';
import { copyApp, removeDir, startDevServer, tempDir, type DevServer } from '../support/dev-server.js';
import { jsonRequest } from '../support/http-client.js';
import { sleep, startLoad } from '../support/load.js';

/** Concurrent clients (each alternating PUT and GET) during the version switch. */
const loadClients = 8;
/** Load before and after the switch, so both versions serve a good number of requests. */
const loadAroundSwitchMs = 500;
const loadDeadlineMs = 30_000;
/** Longest a deploy (debounce, esbuild, index backfill) may take to be reported. */
const deployReportMs = 15_000;

let server: DevServer;
let appDir: string;
let dataDir: string;

beforeAll(async () => {
  appDir = copyApp('shop');
  dataDir = tempDir('lockstep-data-');
  server = await startDevServer(appDir, dataDir);
});

afterAll(async () => {
  await server?.stop();
  removeDir(appDir);
  removeDir(dataDir);
});

interface Observed {
  readonly what: string;
  readonly status: number;
  readonly index: number;
  readonly version: number;
  /** performance.now() when the request was sent. */
  readonly sentAt: number;
}

interface AppStatus {
  readonly activeVersion: number;
  readonly lastVersion: number;
  readonly appliedIndex: number;
}

async function appStatus(): Promise<AppStatus> {
  const status = (await (await fetch(`${server.base}/_status`)).json()) as { apps: AppStatus[] };
  return status.apps[0] as AppStatus;
}

async function observe(what: string, method: string, path: string, body?: unknown): Promise<Observed> {
  const sentAt = performance.now();
  const response = await jsonRequest(`${server.url}${path}`, method, body);
  await response.arrayBuffer();
  return {
    what: `${method} ${path}`,
    status: response.status,
    index: Number(response.headers.get('x-lockstep-index')),
    version: Number(response.headers.get('x-lockstep-version')),
    sentAt,
  };
}

/** The whole refusal message of `version` (schema errors span several lines), once it is complete. */
async function refusalMessage(version: number): Promise<string> {
  const start = `version ${version} refused: `;
  const deadline = Date.now() + deployReportMs;
  for (;;) {
    const output = server.output();
    const at = output.indexOf(start);
    const end = at === -1 ? -1 : output.indexOf('keeps serving', at);
    if (end !== -1) return output.slice(at, end + 'keeps serving'.length);
    if (Date.now() > deadline) throw new Error(`no complete refusal of version ${version}; output:\n${output}`);
    await sleep(20);
  }
}

function itemSchemaEdit(edit: (itemType: string) => string): (schema: string) => string {
  return (schema) => schema.replace(/type Item @table \{[^}]*\}/, (itemType) => edit(itemType));
}

describe('dev-mode versions', () => {
  it('an additive schema edit switches under load: no failed request, a clean cut at the activation index', async () => {
    // Unsealed tables keep undeclared attributes, so this record has a color before the schema does.
    expect((await jsonRequest(`${server.url}/Item/before-red`, 'PUT', { name: 'early', price: 1, color: 'red' })).status).toBe(204);
    expect((await jsonRequest(`${server.url}/Item/?color=red`, 'GET')).status).toBe(400); // not an index yet

    const observed: Observed[] = [];
    const load = startLoad({
      clients: loadClients,
      deadlineMs: loadDeadlineMs,
      async step(client, sequence) {
        const path = `/Item/load-${client}-${sequence}`;
        observed.push(await observe('put', 'PUT', path, { name: `n${client}`, price: sequence }));
        observed.push(await observe('get', 'GET', path));
      },
    });
    await sleep(loadAroundSwitchMs);
    editAppFile(appDir, 'schema.graphql', itemSchemaEdit((item) => item.replace('name: String', 'name: String @indexed').replace(/\}$/, '  color: String @indexed\n}')));
    const line = await server.waitForOutput(/version 2 active at index (\d+)/, deployReportMs);
    const seenAt = performance.now();
    const activationIndex = Number((/at index (\d+)/.exec(line) as RegExpExecArray)[1]);
    await sleep(loadAroundSwitchMs);
    load.stop();
    expect([...(await load.done).values()]).toEqual([]);

    const failed = observed.filter((o) => o.status < 200 || o.status >= 300);
    expect(failed.slice(0, 10)).toEqual([]);
    const wrongSide = observed.filter((o) => (o.index >= activationIndex ? o.version !== 2 : o.version !== 1));
    expect(wrongSide.slice(0, 10)).toEqual([]);
    // Requests sent after the switch was announced are answered by the new version only.
    expect(observed.filter((o) => o.sentAt > seenAt && o.version !== 2).slice(0, 10)).toEqual([]);
    // Both sides of the cut were exercised, or the checks above prove little.
    expect(observed.filter((o) => o.version === 1).length).toBeGreaterThan(loadClients);
    expect(observed.filter((o) => o.version === 2).length).toBeGreaterThan(loadClients);
    console.info(`versions: ${observed.length} requests around the switch at index ${activationIndex}, none failed`);

    // The new indexes answer queries, including for records written before they existed (backfill).
    expect((await jsonRequest(`${server.url}/Item/after-red`, 'PUT', { name: 'late', price: 2, color: 'red' })).status).toBe(204);
    const red = await jsonRequest(`${server.url}/Item/?color=red&select(id)`, 'GET');
    expect(red.status).toBe(200);
    expect(((await red.json()) as { id: string }[]).map((r) => r.id).sort()).toEqual(['after-red', 'before-red']);
    const byName = await jsonRequest(`${server.url}/Item/?name=n3&limit(1)`, 'GET');
    expect(byName.status).toBe(200);
    expect(((await byName.json()) as { name: string }[])[0]?.name).toBe('n3');
    expect(await appStatus()).toMatchObject({ activeVersion: 2, lastVersion: 2 });
  });

  describe('a broken edit is refused, says why, and the active version keeps serving', () => {
    const cases: { name: string; file: string; edit: (content: string) => string; reason: RegExp }[] = [
      { name: 'syntax error in resources.ts', file: 'resources.ts', edit: (code) => `${code}\nexport const broken = ;\n`, reason: /resources\.ts:\d+:\d+/ },
      { name: 'resources.ts that throws while loading', file: 'resources.ts', edit: (code) => `${code}\nthrow new Error('boom while loading');\n`, reason: /boom while loading/ },
      { name: 'unknown type in schema.graphql', file: 'schema.graphql', edit: itemSchemaEdit((item) => item.replace(/\}$/, '  weight: NoSuchScalar\n}')), reason: /NoSuchScalar/ },
      { name: 'schema.graphql that does not parse', file: 'schema.graphql', edit: (schema) => `${schema}\ntype Broken @table {\n  id: ID @primaryKey\n`, reason: /schema|Syntax|Expected/i },
      { name: 'breaking change: an attribute removed', file: 'schema.graphql', edit: itemSchemaEdit((item) => item.replace(/\n\s*color: String @indexed/, '')), reason: /breaking.*color/ },
      { name: 'breaking change: an optional attribute made required', file: 'schema.graphql', edit: itemSchemaEdit((item) => item.replace('price: Float', 'price: Float!')), reason: /breaking.*price/ },
      { name: 'unknown option in config.yaml', file: 'config.yaml', edit: (config) => `${config}\nbogusOption: 1\n`, reason: /bogusOption/ },
      {
        name: 'a declared check that fails against the new version',
        file: 'config.yaml',
        edit: (config) => `${config}\nchecks:\n  - name: missing item\n    path: /Item/no-such-item\n`,
        reason: /check 'missing item' failed: GET \/Item\/no-such-item answered 404, not 2xx/,
      },
      { name: 'a check whose path names no endpoint', file: 'config.yaml', edit: (config) => `${config}\nchecks:\n  - path: Item\n`, reason: /checks\.0\.path/ },
      {
        name: 'two checks with the same name',
        file: 'config.yaml',
        edit: (config) => `${config}\nchecks:\n  - { name: twice, path: /Item/ }\n  - { name: twice, path: /Item/ }\n`,
        reason: /another check is already named 'twice'/,
      },
      { name: 'a GET check with a body', file: 'config.yaml', edit: (config) => `${config}\nchecks:\n  - { path: /Item/, body: { a: 1 } }\n`, reason: /a GET check takes no body/ },
    ];

    for (const testCase of cases) {
      it(testCase.name, async () => {
        const before = await appStatus();
        const next = before.lastVersion + 1;
        const original = editAppFile(appDir, testCase.file, testCase.edit);
        try {
          const line = await server.waitForOutput(new RegExp(`version ${next} (refused|active)`), deployReportMs);
          expect(line).toMatch(`version ${next} refused: `);
          const message = await refusalMessage(next);
          expect(message).toMatch(new RegExp(`; version ${before.activeVersion} keeps serving$`));
          expect(message).toMatch(testCase.reason);
          const after = await appStatus();
          expect(after).toMatchObject({ activeVersion: before.activeVersion, lastVersion: next });
          const read = await jsonRequest(`${server.url}/Item/before-red`, 'GET');
          expect(read.status).toBe(200);
          expect(read.headers.get('x-lockstep-version')).toBe(String(before.activeVersion));
          const write = await jsonRequest(`${server.url}/Item/during-${next}`, 'PUT', { name: 'still serving', price: next });
          expect(write.status).toBe(204);
          expect(write.headers.get('x-lockstep-version')).toBe(String(before.activeVersion));
        } finally {
          editAppFile(appDir, testCase.file, () => original);
        }
      });
    }

    it('a later good edit activates', async () => {
      const before = await appStatus();
      const next = before.lastVersion + 1;
      editAppFile(appDir, 'schema.graphql', itemSchemaEdit((item) => item.replace(/\}$/, '  size: Int\n}')));
      const line = await server.waitForOutput(new RegExp(`version ${next} (refused|active)`), deployReportMs);
      expect(line).toMatch(new RegExp(`version ${next} active at index \\d+`));
      const write = await jsonRequest(`${server.url}/Item/sized`, 'PUT', { name: 'sized', price: 3, size: 4 });
      expect(write.status).toBe(204);
      expect(write.headers.get('x-lockstep-version')).toBe(String(next));
      // The new attribute is typed now: a string size is refused.
      expect((await jsonRequest(`${server.url}/Item/sized`, 'PATCH', { size: 'big' })).status).toBe(400);
    });
  });

  it('a restart recovers the active version and all data', async () => {
    const before = await appStatus();
    const paths = ['/Item/before-red', '/Item/after-red', '/Item/sized', '/Item/load-0-0', '/Product/?price=ge=0'];
    const snapshot = async (): Promise<unknown[]> =>
      Promise.all(
        paths.map(async (path) => {
          const response = await jsonRequest(`${server.url}${path}`, 'GET');
          return { path, status: response.status, etag: response.headers.get('etag'), version: response.headers.get('x-lockstep-version'), body: await response.json() };
        }),
      );
    const records = await snapshot();
    let restarts = 0;
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      restarts++;
      const code = await server.stop(signal);
      if (signal === 'SIGTERM') expect(code).toBe(0);
      server = await startDevServer(appDir, dataDir);
      expect(await snapshot()).toEqual(records);
      const after = await appStatus();
      expect(after).toMatchObject({ activeVersion: before.activeVersion, lastVersion: before.lastVersion });
      // The log is a one-voter Raft group: each start begins a new term with the leader's empty
      // entry, and nothing else is added (the records and their ETags above are unchanged).
      expect(after.appliedIndex - before.appliedIndex).toBeGreaterThanOrEqual(0);
      expect(after.appliedIndex - before.appliedIndex).toBeLessThanOrEqual(restarts);
      // The unchanged app directory is the active bundle: nothing is redeployed.
      expect(server.output()).not.toMatch(/active at index/);
    }
  });

  it('edits made while the server was down are deployed at startup; a broken one leaves the active version serving', async () => {
    const before = await appStatus();
    expect(await server.stop('SIGTERM')).toBe(0);
    const original = editAppFile(appDir, 'resources.ts', (code) => `${code}\nexport const broken = ;\n`);
    server = await startDevServer(appDir, dataDir);
    const refused = await refusalMessage(before.lastVersion + 1);
    expect(refused).toMatch(/resources\.ts:\d+:\d+/);
    const read = await jsonRequest(`${server.url}/Item/before-red`, 'GET');
    expect(read.status).toBe(200);
    expect(read.headers.get('x-lockstep-version')).toBe(String(before.activeVersion));

    expect(await server.stop('SIGTERM')).toBe(0);
    editAppFile(appDir, 'resources.ts', () => original);
    editAppFile(appDir, 'schema.graphql', itemSchemaEdit((item) => item.replace(/\}$/, '  note: String\n}')));
    server = await startDevServer(appDir, dataDir);
    const next = before.lastVersion + 2;
    await server.waitForOutput(new RegExp(`version ${next} active at index \\d+`), deployReportMs);
    const after = await jsonRequest(`${server.url}/Item/before-red`, 'GET');
    expect(after.headers.get('x-lockstep-version')).toBe(String(next));
    expect(await after.json()).toMatchObject({ id: 'before-red', name: 'early', color: 'red' });
  });
});
