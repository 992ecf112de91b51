// Bad input to the control plane's API gets a problem+json answer naming what was wrong, and
// changes nothing: a real `lockstep control` process with no nodes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../support/fleet.js';

interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly body: Record<string, unknown>;
}

const schema = 'type T @table { id: ID @primaryKey }';

describe('control API: bad input', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await Fleet.start({ nodes: [] });
  }, 60_000);

  afterAll(async () => {
    await fleet?.close();
  }, 30_000);

  async function call(method: string, path: string, body?: string): Promise<Answer> {
    const response = await fetch(`${fleet.controlUrl}${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body }) });
    const text = await response.text();
    return { status: response.status, contentType: response.headers.get('content-type') ?? '', body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  }

  const cases: readonly { readonly name: string; readonly method: string; readonly path: string; readonly body?: string; readonly status: number; readonly mentions: RegExp }[] = [
    { name: 'body that is not JSON', method: 'POST', path: '/v1/apps/a/deploy', body: '{"regions":', status: 400, mentions: /not JSON/ },
    { name: 'body that is an array', method: 'POST', path: '/v1/apps/a/deploy', body: '[]', status: 400, mentions: /JSON object/ },
    { name: 'no regions', method: 'POST', path: '/v1/apps/a/deploy', body: JSON.stringify({ bundle: { files: { 'schema.graphql': schema } } }), status: 400, mentions: /regions/ },
    { name: 'a region named twice', method: 'POST', path: '/v1/apps/a/deploy', body: JSON.stringify({ regions: ['eu', 'eu'], bundle: { files: { 'schema.graphql': schema } } }), status: 400, mentions: /twice/ },
    { name: 'replicas 0', method: 'POST', path: '/v1/apps/a/deploy', body: JSON.stringify({ regions: ['eu'], replicas: 0, bundle: { files: { 'schema.graphql': schema } } }), status: 400, mentions: /replicas/ },
    { name: 'replicas not a number', method: 'POST', path: '/v1/apps/a/deploy', body: JSON.stringify({ regions: ['eu'], replicas: '3', bundle: { files: { 'schema.graphql': schema } } }), status: 400, mentions: /replicas/ },
    { name: 'survive of an unknown kind', method: 'POST', path: '/v1/apps/a/deploy', body: JSON.stringify({ regions: ['eu'], survive: 'planet', bundle: { files: { 'schema.graphql': schema } } }), status: 400, mentions: /survive/ },
    { name: 'no bundle', method: 'POST', path: '/v1/apps/a/deploy', body: JSON.stringify({ regions: ['eu'] }), status: 400, mentions: /bundle/ },
    { name: 'a bundle file that is not one', method: 'POST', path: '/v1/apps/a/deploy', body: JSON.stringify({ regions: ['eu'], bundle: { files: { 'schema.graphql': schema, 'evil.sh': 'rm -rf /' } } }), status: 400, mentions: /evil\.sh/ },
    { name: 'a bundle without a schema', method: 'POST', path: '/v1/apps/a/deploy', body: JSON.stringify({ regions: ['eu'], bundle: { files: { 'config.yaml': 'name: a' } } }), status: 400, mentions: /schema\.graphql/ },
    { name: 'an app name with a slash', method: 'POST', path: '/v1/apps/a%2Fb/deploy', body: JSON.stringify({ regions: ['eu'], bundle: { files: { 'schema.graphql': schema } } }), status: 400, mentions: /name/ },
    { name: 'a plan id of another shape', method: 'POST', path: '/v1/apps/a/deploy', body: JSON.stringify({ regions: ['eu'], planId: 'latest', bundle: { files: { 'schema.graphql': schema } } }), status: 400, mentions: /planId/ },
    { name: 'a spec no node can meet', method: 'POST', path: '/v1/apps/a/deploy', body: JSON.stringify({ regions: ['eu'], bundle: { files: { 'schema.graphql': schema } } }), status: 409, mentions: /3 voters need 3 eligible nodes/ },
    { name: 'a heartbeat without a node', method: 'POST', path: '/v1/heartbeat', body: JSON.stringify({ groups: [] }), status: 400, mentions: /node/ },
    { name: 'a heartbeat with a bad URL', method: 'POST', path: '/v1/heartbeat', body: JSON.stringify({ node: { id: 'n1', region: 'eu', httpUrl: 'ftp://x', grpcAddress: '127.0.0.1:1' }, groups: [] }), status: 400, mentions: /httpUrl/ },
    { name: 'a heartbeat without groups', method: 'POST', path: '/v1/heartbeat', body: JSON.stringify({ node: { id: 'n1', region: 'eu', httpUrl: 'http://127.0.0.1:1', grpcAddress: '127.0.0.1:1' } }), status: 400, mentions: /groups/ },
    { name: 'draining an unknown node', method: 'POST', path: '/v1/nodes/nobody/drain', status: 404, mentions: /nobody/ },
    { name: 'an unknown app', method: 'GET', path: '/v1/apps/nothing', status: 404, mentions: /nothing/ },
    { name: 'an unknown path', method: 'GET', path: '/v1/everything', status: 404, mentions: /everything/ },
    { name: 'a write to a read-only path', method: 'DELETE', path: '/v1/nodes', status: 405, mentions: /GET/ },
    { name: 'a read of a write-only path', method: 'GET', path: '/v1/apps/a/deploy', status: 405, mentions: /POST/ },
  ];

  for (const testCase of cases) {
    it(`answers ${testCase.status} to ${testCase.name}`, async () => {
      const answer = await call(testCase.method, testCase.path, testCase.body);
      expect(answer.status).toBe(testCase.status);
      expect(answer.contentType).toBe('application/problem+json');
      expect(JSON.stringify(answer.body)).toMatch(testCase.mentions);
    });
  }

  it('changed nothing', async () => {
    const apps = await call('GET', '/v1/apps');
    const nodes = await call('GET', '/v1/nodes');
    expect(apps.body.apps).toEqual([]);
    expect(nodes.body.nodes).toEqual([]);
  });
});
