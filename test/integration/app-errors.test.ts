// An exception in app code is a 500 whose problem+json names the resource, method and version,
// logged with its stack and counted per version; nothing it wrote before throwing is applied.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeApp } from '../support/app-files.js';
import { removeDir, startDevServer, tempDir, type DevServer } from '../support/dev-server.js';
import { jsonRequest, metricValue } from '../support/http-client.js';

const appDir = writeApp('errors', {
  'config.yaml': 'name: errs\n',
  'schema.graphql': 'type Thing @table @export(name: "Thing") {\n  id: ID @primaryKey\n  n: Int\n}\n',
  'resources.ts': `import { tables, Resource } from 'lockstep';
export class Thing extends tables.Thing {
  async post(target: unknown, body: { n: number }) {
    await tables.Thing.put('written-before-throw', { n: 1 });
    return { n: body.n + 1 };
  }
}
export class Boom extends Resource {
  async get() { throw new RangeError('the app broke'); }
}
`,
});
const dataDir = tempDir('lockstep-app-errors-');
let server: DevServer;

beforeAll(async () => {
  server = await startDevServer(appDir, dataDir);
});

afterAll(async () => {
  await server.stop();
  removeDir(appDir);
  removeDir(dataDir);
});

describe('app code exceptions', () => {
  it('answer a 500 naming the resource and method, apply nothing, and are counted per version', async () => {
    const thrown = await jsonRequest(`${server.url}/Thing/`, 'POST', 'null');
    expect(thrown.status).toBe(500);
    expect(thrown.headers.get('content-type')).toMatch(/problem\+json/);
    const problem = (await thrown.json()) as { type: string; detail: string };
    expect(problem.type).toMatch(/app-error$/);
    expect(problem.detail).toMatch(/^Thing\.post of app errs \(version 1\) threw TypeError/);
    expect((await fetch(`${server.url}/Thing/written-before-throw`)).status).toBe(404);

    const boom = await fetch(`${server.url}/Boom/`);
    expect(boom.status).toBe(500);
    expect(((await boom.json()) as { detail: string }).detail).toContain('Boom.get of app errs (version 1) threw RangeError: the app broke');

    const metrics = await (await fetch(`${server.base}/metrics`)).text();
    expect(metricValue(metrics, 'lockstep_app_errors_total', { app: 'errs', version: '1', resource: 'Thing', method: 'post' })).toBe(1);
    expect(metricValue(metrics, 'lockstep_app_errors_total', { app: 'errs', version: '1', resource: 'Boom', method: 'get' })).toBe(1);
    // Logged with the stack (the dev server runs at warn level; errors are above it).
    await server.waitForOutput(/app code threw/);
    expect(server.output()).toMatch(/RangeError: the app broke\\n\s+at /);
  });
});
