// The agent boundary, on real processes: a secured control plane and four nodes (eu1-eu3, us1);
// an identity `bot` holding the built-in agent role on app `shop` in region eu only. With its
// token (and forgeries of it) the suite makes well over 100 distinct attempts through every
// surface it can reach - clusterctl, the control-plane API, node REST, /_admin and node
// endpoints, SSE and WebSocket, forged, replayed, revoked, expired and widened tokens, and
// crafted control entries that reach apply - to grant itself a role, widen a token, write
// identities or roles, read credentials, touch the audit trail, or deploy to, read or write an
// app or region it was not granted. None may succeed, and every refused request must be an
// audit record (actor, surface, request, reason). Then what the agent may do still works.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import WebSocket from 'ws';
import { ControlMachine } from '../../src/control/machine.js';
import { verifyChain, type AuditRecord } from '../../src/control/audit.js';
import type { ControlCommand, ControlEntry } from '../../src/control/commands.js';
import { ControlStore } from '../../src/storage/control-store.js';
import { attenuate, issueToken } from '../../src/security/tokens.js';
import { writeApp } from '../support/app-files.js';
import { pollUntil, sleep, type ClusterNode } from '../support/cluster.js';
import { heartbeat, makeTlsDir, rawReadIndex, sendRawBatch } from '../support/tls.js';
import { Fleet, nodesOf } from '../support/fleet.js';
import { notesFiles } from '../support/notes-app.js';

interface Attempt {
  /** What it tries, in words. */
  readonly what: string;
  /** Where: 'control', 'node:<id>', 'clusterctl', 'apply'. */
  readonly surface: string;
  /** The request line the audit record must name ('' for apply and clusterctl, checked otherwise). */
  readonly request: string;
  /** The actor the audit record must name. */
  readonly actor: string;
  /** What came back: an HTTP status, a clusterctl exit code, or apply's outcome. */
  readonly outcome: string;
  readonly succeeded: boolean;
}

interface AuditJson extends AuditRecord {
  readonly hash: string;
}

const requestTimeoutMs = 15_000;

describe('the agent boundary', () => {
  let fleet: Fleet;
  let authDir: string;
  let tlsDir: string;
  let agentToken = '';
  let admin: Record<string, string> = {};
  let adminTokenId = '';
  const attempts: Attempt[] = [];

  const controlUrl = (): string => fleet.controlUrl;
  const nodeUrl = (id: string): string => fleet.node(id).base;

  /** One HTTP attempt; `succeeded` is any 2xx (or, for reads of credentials, a body with hashes). */
  async function http(what: string, surface: string, base: string, method: string, path: string, options: { token?: string | null; body?: unknown; headers?: Record<string, string>; actor?: string } = {}): Promise<Response> {
    const token = options.token === undefined ? agentToken : options.token;
    const headers: Record<string, string> = { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers };
    const response = await fetch(`${base}${path}`, { method, headers, ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }), signal: AbortSignal.timeout(requestTimeoutMs) });
    const text = await response.text();
    // A credential hash in the answer, or the presented secret echoed back, is a success too.
    const leaked = /"hash"\s*:|"publicKey"\s*:|passwordHash|scrypt\$/.test(text) || (token !== null && token.length > 24 && text.includes(token.slice(-24)));
    attempts.push({ what, surface, request: `${method} ${path.split('?')[0] ?? path}`, actor: options.actor ?? (token === null ? 'unauthenticated' : 'bot'), outcome: String(response.status), succeeded: (response.status >= 200 && response.status < 300) || leaked });
    return response;
  }

  async function ctl(what: string, args: readonly string[], token = agentToken): Promise<void> {
    const result = await fleet.ctl(args, 60_000, token);
    attempts.push({ what, surface: 'clusterctl', request: '', actor: 'bot', outcome: `exit ${result.code}`, succeeded: result.code === 0 });
  }

  beforeAll(async () => {
    authDir = mkdtempSync(join(tmpdir(), 'lockstep-auth-'));
    tlsDir = await makeTlsDir(['c1', 'eu1', 'eu2', 'eu3', 'us1']);
    fleet = await Fleet.start({ nodes: nodesOf('eu:3,us:1'), authDir, tlsDir });
    admin = fleet.adminHeaders();
    const shop = writeApp('shop', { ...notesFiles('v1'), 'config.yaml': 'name: shop\n' });
    const payroll = writeApp('payroll', { ...notesFiles('v1'), 'config.yaml': 'name: payroll\n' });
    await fleet.deploy(shop, 'eu');
    await fleet.deploy(payroll, 'eu');
    for (const args of [
      ['identity', 'create', 'bot', '--kind', 'service', '--description', 'an AI agent'],
      ['grant', 'bot', 'agent', '--apps', 'shop', '--regions', 'eu'],
    ]) {
      const done = await fleet.ctl(args);
      expect(done.code, done.stderr).toBe(0);
    }
    const issued = await fleet.ctl(['token', 'issue', 'bot', '--expires', '1d']);
    expect(issued.code, issued.stderr).toBe(0);
    agentToken = issued.stdout.trim();
    const whoami = await fleet.ctlJson<{ token: string }>(['whoami']);
    adminTokenId = whoami.token;
    // The nodes hear of the new identity with their next heartbeat.
    await pollUntil(async () => ((await fetch(`${nodeUrl('eu1')}/shop/Note/n1`, { headers: { authorization: `Bearer ${agentToken}` } })).status === 404 ? true : undefined), 15_000, 'eu1 to know the agent');
  }, 240_000);

  afterAll(async () => {
    await fleet?.close();
    for (const dir of [authDir, tlsDir]) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('what the agent was granted works: shop in eu, its data, a deploy there, its own tokens', async () => {
    const put = await fetch(`${nodeUrl('eu1')}/shop/Note/n1`, { method: 'PUT', headers: { authorization: `Bearer ${agentToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ text: 'hello' }) });
    expect(put.status, await put.text()).toBe(204);
    // A follower answers reads from what it has applied; the session index makes it wait for the write.
    const index = put.headers.get('x-lockstep-index') ?? '';
    const read = await fetch(`${nodeUrl('eu2')}/shop/Note/n1`, { headers: { authorization: `Bearer ${agentToken}`, 'x-lockstep-min-index': index } });
    expect(read.status).toBe(200);
    const status = await fleet.ctl(['status', 'shop'], 60_000, agentToken);
    expect(status.code, status.stderr).toBe(0);
    const shop2 = writeApp('shop', { ...notesFiles('v2'), 'config.yaml': 'name: shop\n' });
    const deployed = await fleet.ctl(['deploy', shop2, '--regions', 'eu', '--timeout', '90s'], 120_000, agentToken);
    expect(deployed.code, deployed.stdout + deployed.stderr).toBe(0);
    // Narrowing its own token needs nobody: the narrower one reads, and cannot write.
    const narrowed = await fleet.ctl(['token', 'attenuate', '--ops', 'read', '--expires', '1h'], 60_000, agentToken);
    expect(narrowed.code, narrowed.stderr).toBe(0);
    const readOnly = narrowed.stdout.trim();
    expect((await fetch(`${nodeUrl('eu1')}/shop/Note/n1`, { headers: { authorization: `Bearer ${readOnly}` } })).status).toBe(200);
    const write = await fetch(`${nodeUrl('eu1')}/shop/Note/n2`, { method: 'PUT', headers: { authorization: `Bearer ${readOnly}`, 'content-type': 'application/json' }, body: '{"text":"x"}' });
    expect(write.status).toBe(403);
  }, 180_000);

  it('makes over 100 attempts to cross it through every surface: none succeeds, each is an audit record', async () => {
    const control = controlUrl();
    const eu1 = nodeUrl('eu1');
    const us1 = nodeUrl('us1');
    const bogus = issueToken().token;
    const [, agentId = '', agentSecret = ''] = /^lst_([0-9a-f]{16})_(.+)$/.exec(agentToken) ?? [];
    const forged = {
      unknown: bogus,
      flippedSecret: `lst_${agentId}_${agentSecret.slice(0, -2)}${agentSecret.endsWith('AA') ? 'BB' : 'AA'}`,
      adminIdAgentSecret: `lst_${adminTokenId}_${agentSecret}`,
      garbage: 'not-a-token',
      empty: '',
    };

    // --- The control-plane API, with the agent's token. ---
    const api: [string, string, string, unknown?][] = [
      ['create an identity', 'POST', '/v1/identities', { id: 'evil', kind: 'user' }],
      ['create an identity with a password', 'POST', '/v1/identities', { id: 'evil2', kind: 'user', password: 'correct horse battery' }],
      ['grant itself admin', 'POST', '/v1/identities/bot/grants', { role: 'admin' }],
      ['grant itself operator', 'POST', '/v1/identities/bot/grants', { role: 'operator' }],
      ['grant itself system', 'POST', '/v1/identities/bot/grants', { role: 'system' }],
      ['widen its own grant to every app', 'POST', '/v1/identities/bot/grants', { role: 'agent', apps: '*', regions: '*' }],
      ['widen its own grant to region us', 'POST', '/v1/identities/bot/grants', { role: 'agent', apps: ['shop'], regions: ['eu', 'us'] }],
      ['grant admin to a new accomplice', 'POST', '/v1/identities/evil/grants', { role: 'admin' }],
      ["remove the admin's role", 'DELETE', '/v1/identities/admin/grants/admin'],
      ['remove its own grant (to re-add wider)', 'DELETE', '/v1/identities/bot/grants/agent'],
      ['disable the admin', 'PATCH', '/v1/identities/admin', { disabled: true }],
      ["set the admin's password", 'PATCH', '/v1/identities/admin', { password: 'i am the admin now' }],
      ['give itself a password', 'PATCH', '/v1/identities/bot', { password: 'i am a user now!' }],
      ['delete the admin identity', 'DELETE', '/v1/identities/admin'],
      ['list identities', 'GET', '/v1/identities'],
      ['read the admin identity', 'GET', '/v1/identities/admin'],
      ['read its own identity record', 'GET', '/v1/identities/bot'],
      ['define a role with admin', 'POST', '/v1/roles', { name: 'mine', permissions: [{ ops: ['admin'], apps: '*' }] }],
      ['define a role with cluster', 'POST', '/v1/roles', { name: 'mine2', permissions: [{ ops: ['cluster'], apps: '*' }] }],
      ['redefine the agent role', 'POST', '/v1/roles', { name: 'agent', permissions: [{ ops: ['admin'], apps: '*' }] }],
      ['remove the agent role', 'DELETE', '/v1/roles/agent'],
      ['remove the admin role', 'DELETE', '/v1/roles/admin'],
      ['issue itself a token', 'POST', '/v1/tokens', { identity: 'bot' }],
      ['issue itself a wider token', 'POST', '/v1/tokens', { identity: 'bot', scope: { apps: ['payroll'] } }],
      ['issue a token for the admin', 'POST', '/v1/tokens', { identity: 'admin' }],
      ['issue a token for the system identity', 'POST', '/v1/tokens', { identity: 'system' }],
      ["revoke the admin's token", 'DELETE', `/v1/tokens/${adminTokenId}`],
      ['read the checkpoint', 'GET', '/v1/audit/checkpoint'],
      ['verify the trail', 'GET', '/v1/audit/verify'],
      ['append to the trail', 'POST', '/v1/audit', { op: 'app.deploy', actor: 'admin' }],
      ['edit a record', 'PUT', '/v1/audit/3', { actor: 'someone-else' }],
      ['patch a record', 'PATCH', '/v1/audit/3', { outcome: 'ok' }],
      ['delete a record', 'DELETE', '/v1/audit/3'],
      ['delete the trail', 'DELETE', '/v1/audit'],
      ['reorder records', 'POST', '/v1/audit/reorder', { from: 3, to: 4 }],
      ['truncate the trail', 'POST', '/v1/audit/truncate', { seq: 2 }],
      ['forge a seal', 'POST', '/v1/audit/checkpoint', { seq: 1 }],
      ['read credentials as a node (heartbeat)', 'POST', '/v1/heartbeat', { node: { id: 'eu1', region: 'eu', httpUrl: 'http://127.0.0.1:1', grpcAddress: '127.0.0.1:2' }, groups: [] }],
      ['register a rogue node', 'POST', '/v1/heartbeat', { node: { id: 'rogue', region: 'eu', httpUrl: 'http://127.0.0.1:1', grpcAddress: '127.0.0.1:2' }, groups: [] }],
      ['deploy an app not granted', 'POST', '/v1/apps/payroll/deploy', { regions: ['eu'], bundle: { files: { 'schema.graphql': 'type A @table { id: ID @primaryKey }' } } }],
      ['deploy a new app', 'POST', '/v1/apps/newapp/deploy', { regions: ['eu'], bundle: { files: { 'schema.graphql': 'type A @table { id: ID @primaryKey }' } } }],
      ['deploy a system app', 'POST', '/v1/apps/system/deploy', { regions: ['eu'], bundle: { files: { 'schema.graphql': 'type A @table { id: ID @primaryKey }' } } }],
      ['deploy its app to a region not granted', 'POST', '/v1/apps/shop/deploy', { regions: ['eu', 'us'], bundle: { files: { 'schema.graphql': 'type A @table { id: ID @primaryKey }' } } }],
      ['deploy its app to us only', 'POST', '/v1/apps/shop/deploy', { regions: ['us'], bundle: { files: { 'schema.graphql': 'type A @table { id: ID @primaryKey }' } } }],
      ['plan a deploy of an app not granted', 'POST', '/v1/apps/payroll/deploy', { regions: ['eu'], plan: true, bundle: { files: { 'schema.graphql': 'type A @table { id: ID @primaryKey }' } } }],
      ['roll back an app not granted', 'POST', '/v1/apps/payroll/rollback', {}],
      ['abort an app not granted', 'POST', '/v1/apps/payroll/abort', {}],
      ['read an app not granted', 'GET', '/v1/apps/payroll'],
      ['drain a node', 'POST', '/v1/nodes/eu1/drain', {}],
      ['undrain a node', 'POST', '/v1/nodes/eu1/undrain', {}],
    ];
    for (const [what, method, path, body] of api) await http(what, 'control', control, method, path, body === undefined ? {} : { body });
    // The trail it may read is its own actions' and its app's, nothing of payroll, identities or other callers.
    const ownTrail = (await (await fetch(`${control}/v1/audit?limit=10000`, { headers: { authorization: `Bearer ${agentToken}` } })).json()) as { records: AuditRecord[] };
    expect(ownTrail.records.length).toBeGreaterThan(0);
    expect(ownTrail.records.filter((record) => record.actor !== 'bot' && record.target !== 'app:shop').map((record) => `${record.seq} ${record.actor} ${record.target}`)).toEqual([]);
    // The app list shows only what it may read.
    const apps = (await (await fetch(`${control}/v1/apps`, { headers: { authorization: `Bearer ${agentToken}` } })).json()) as { apps: { name: string }[] };
    expect(apps.apps.map((app) => app.name)).toEqual(['shop']);

    // --- Forged, replayed, revoked, expired and widened tokens. ---
    for (const [name, token] of Object.entries(forged)) {
      await http(`a forged token (${name}) to grant admin`, 'control', control, 'POST', '/v1/identities/bot/grants', { token, body: { role: 'admin' }, actor: 'unauthenticated' });
      await http(`a forged token (${name}) on node REST`, 'node:eu1', eu1, 'GET', '/payroll/Note/x', { token, actor: 'unauthenticated' });
    }
    await http('Basic with a guessed admin password', 'control', control, 'GET', '/v1/identities', { token: null, headers: { authorization: `Basic ${Buffer.from('admin:password123456').toString('base64')}` } });
    await http('Basic as the agent (a service has no password)', 'control', control, 'GET', '/v1/identities', { token: null, headers: { authorization: `Basic ${Buffer.from('bot:whatever-it-is').toString('base64')}` } });
    await http('an unknown Authorization scheme', 'control', control, 'GET', '/v1/identities', { token: null, headers: { authorization: 'Digest username="admin"' } });
    // A token issued to it, then revoked, replayed; and one that expired.
    const second = await fleet.ctl(['token', 'issue', 'bot', '--description', 'to be revoked']);
    const revokedToken = second.stdout.trim();
    const revokedId = /^lst_([0-9a-f]{16})_/.exec(revokedToken)?.[1] ?? '';
    expect((await fleet.ctl(['token', 'revoke', revokedId])).code).toBe(0);
    const short = await fleet.ctl(['token', 'issue', 'bot', '--expires', '1s']);
    const expiredToken = short.stdout.trim();
    await sleep(1_500);
    await pollUntil(async () => ((await fetch(`${eu1}/shop/Note/n1`, { headers: { authorization: `Bearer ${revokedToken}` } })).status === 401 ? true : undefined), 15_000, 'eu1 to know of the revocation');
    // (that probe was itself a refused attempt with a revoked token: it is recorded too)
    attempts.push({ what: 'a revoked token on node REST (while waiting for the revocation)', surface: 'node:eu1', request: 'GET /shop/Note/n1', actor: 'unauthenticated', outcome: '401', succeeded: false });
    for (const [name, token] of [['revoked', revokedToken], ['expired', expiredToken]] as const) {
      await http(`a ${name} token on the control API`, 'control', control, 'GET', '/v1/apps/shop', { token, actor: 'unauthenticated' });
      await http(`a ${name} token on node REST`, 'node:eu1', eu1, 'PUT', '/shop/Note/r1', { token, body: { text: 'x' }, actor: 'unauthenticated' });
      await http(`a ${name} token attenuated`, 'node:eu1', eu1, 'GET', '/shop/Note/n1', { token: attenuate(token, { ops: ['read'] }), actor: 'unauthenticated' });
    }
    // Attenuations: narrowed to shop reads, then "widened".
    const readShop = attenuate(agentToken, { apps: ['shop'], ops: ['read'] });
    const widerBlock = attenuate(readShop, { apps: ['shop', 'payroll'], ops: ['read', 'write', 'deploy', 'admin'] });
    await http('a widened attenuation writes', 'node:eu1', eu1, 'PUT', '/shop/Note/w1', { token: widerBlock, body: { text: 'x' } });
    await http('a widened attenuation reads payroll', 'node:eu1', eu1, 'GET', '/payroll/Note/n1', { token: widerBlock });
    await http('a widened attenuation grants admin', 'control', control, 'POST', '/v1/identities/bot/grants', { token: widerBlock, body: { role: 'admin' } });
    await http('a widened attenuation deploys', 'control', control, 'POST', '/v1/apps/shop/deploy', { token: widerBlock, body: { regions: ['eu'], bundle: { files: { 'schema.graphql': 'type A @table { id: ID @primaryKey }' } } } });
    const body = JSON.parse(Buffer.from(readShop.slice(4), 'base64url').toString('utf8')) as { t: string; b: { s: unknown; k: string; g: string }[]; p: string };
    const tampered = `lsa_${Buffer.from(JSON.stringify({ ...body, b: [{ ...body.b[0], s: { apps: ['shop', 'payroll'] } }] })).toString('base64url')}`;
    const stripped = `lsa_${Buffer.from(JSON.stringify({ ...body, b: [] })).toString('base64url')}`;
    const grafted = `lsa_${Buffer.from(JSON.stringify({ ...(JSON.parse(Buffer.from(attenuate(bogus, { apps: ['shop'] }).slice(4), 'base64url').toString('utf8')) as object), t: agentId })).toString('base64url')}`;
    for (const [name, token] of [['a block edited', tampered], ['every block stripped', stripped], ["another token's block grafted on", grafted]] as const) {
      await http(`an attenuation with ${name}, on the control API`, 'control', control, 'GET', '/v1/apps/payroll', { token, actor: 'unauthenticated' });
      await http(`an attenuation with ${name}, on node REST`, 'node:eu1', eu1, 'GET', '/payroll/Note/n1', { token, actor: 'unauthenticated' });
    }

    // --- Node REST, node endpoints and /_admin, with the agent's token. ---
    const node: [string, string, string, string, unknown?][] = [
      ['read an app not granted', 'eu1', 'GET', '/payroll/Note/n1'],
      ['query an app not granted', 'eu1', 'GET', '/payroll/Note/?text=x'],
      ['write an app not granted', 'eu1', 'PUT', '/payroll/Note/n1', { text: 'mine' }],
      ['create in an app not granted', 'eu2', 'POST', '/payroll/Note/', { text: 'mine' }],
      ['patch in an app not granted', 'eu3', 'PATCH', '/payroll/Note/n1', { text: 'mine' }],
      ['delete in an app not granted', 'eu1', 'DELETE', '/payroll/Note/n1'],
      ['delete a collection not granted', 'eu1', 'DELETE', '/payroll/Note/?text=x'],
      ['call a resource not granted', 'eu1', 'GET', '/payroll/Hello/'],
      ['read its app through a region not granted', 'us1', 'GET', '/shop/Note/n1'],
      ['write its app through a region not granted', 'us1', 'PUT', '/shop/Note/n9', { text: 'x' }],
      ['write a system table', 'eu1', 'PUT', '/system/hdb_user/bot', { role: 'super_user' }],
      ['write a role table', 'eu1', 'PUT', '/system/hdb_role/agent', { permission: { super_user: true } }],
      ['read the user table', 'eu1', 'GET', '/system/hdb_user/'],
      ['write the control tables', 'eu1', 'PUT', '/control/identity/bot', { grants: ['admin'] }],
      ['add a learner (membership)', 'eu1', 'POST', '/_admin/shop/learners', { node: 'us1' }],
      ['stage a bundle directly', 'eu1', 'POST', '/_admin/shop/stage', { bundle: { files: {} } }],
      ['activate a version directly', 'eu1', 'POST', '/_admin/shop/activate', { version: 1, epoch: 0 }],
      ['abort a version directly', 'eu1', 'POST', '/_admin/shop/abort', { version: 1 }],
      ['admin on an app not granted', 'eu2', 'POST', '/_admin/payroll/activate', { version: 1, epoch: 0 }],
      ['inject faults', 'eu1', 'POST', '/_admin/shop/faults', { drop: 1 }],
      ['read node status', 'eu1', 'GET', '/_status'],
      ['read node metrics', 'eu1', 'GET', '/metrics'],
      ['read status through a region not granted', 'us1', 'GET', '/_status'],
    ];
    for (const [what, id, method, path, payload] of node) await http(what, `node:${id}`, nodeUrl(id), method, path, payload === undefined ? {} : { body: payload });
    // SSE.
    for (const [what, id, path] of [
      ['subscribe (SSE) to an app not granted', 'eu1', '/payroll/Note/'],
      ['subscribe (SSE) to a record not granted', 'eu2', '/payroll/Note/n1'],
      ['subscribe (SSE) through a region not granted', 'us1', '/shop/Note/'],
    ] as const) {
      await http(what, `node:${id}`, nodeUrl(id), 'GET', path, { headers: { accept: 'text/event-stream' } });
    }
    // WebSocket.
    const wsAttempt = async (what: string, id: string, path: string, token: string | null, actor = 'bot'): Promise<void> => {
      const status = await new Promise<number>((resolveStatus) => {
        const socket = new WebSocket(`${nodeUrl(id).replace('http', 'ws')}${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
        socket.once('open', () => {
          socket.close();
          resolveStatus(101);
        });
        socket.once('unexpected-response', (_request, response) => {
          resolveStatus(response.statusCode ?? 0);
          socket.terminate();
        });
        socket.once('error', () => resolveStatus(0));
      });
      attempts.push({ what, surface: `node:${id}`, request: `GET ${path}`, actor, outcome: String(status), succeeded: status === 101 });
    };
    await wsAttempt('subscribe (WebSocket) to an app not granted', 'eu1', '/payroll/Note/', agentToken);
    await wsAttempt('subscribe (WebSocket) through a region not granted', 'us1', '/shop/Note/', agentToken);
    await wsAttempt('subscribe (WebSocket) with a forged token', 'eu1', '/shop/Note/', forged.flippedSecret, 'unauthenticated');
    await wsAttempt('subscribe (WebSocket) with no token', 'eu2', '/shop/Note/', null, 'unauthenticated');
    // A browser's WebSocket presents its token as a subprotocol: the same checks hold.
    const wsProtocolAttempt = async (what: string, id: string, path: string, token: string, actor: string): Promise<string | undefined> => {
      const { status, protocol } = await new Promise<{ status: number; protocol?: string }>((resolveStatus) => {
        const socket = new WebSocket(`${nodeUrl(id).replace('http', 'ws')}${path}`, ['lockstep', `lockstep.bearer.${token}`]);
        socket.once('open', () => {
          resolveStatus({ status: 101, protocol: socket.protocol });
          socket.close();
        });
        socket.once('unexpected-response', (_request, response) => {
          resolveStatus({ status: response.statusCode ?? 0 });
          socket.terminate();
        });
        socket.once('error', () => resolveStatus({ status: 0 }));
      });
      if (what !== '') attempts.push({ what, surface: `node:${id}`, request: `GET ${path}`, actor, outcome: String(status), succeeded: status === 101 });
      return protocol;
    };
    await wsProtocolAttempt('subscribe (WebSocket, token as subprotocol) to an app not granted', 'eu1', '/payroll/Note/', agentToken, 'bot');
    await wsProtocolAttempt('subscribe (WebSocket, forged token as subprotocol)', 'eu1', '/shop/Note/', forged.flippedSecret, 'unauthenticated');
    // The agent's own app opens, and the node selects `lockstep`, never echoing the token.
    expect(await wsProtocolAttempt('', 'eu1', '/shop/Note/', agentToken, 'bot')).toBe('lockstep');

    // --- clusterctl, with the agent's token. ---
    const shopDir = writeApp('shop', { ...notesFiles('v3'), 'config.yaml': 'name: shop\n' });
    const payrollDir = writeApp('payroll', { ...notesFiles('v9'), 'config.yaml': 'name: payroll\n' });
    const ctlAttempts: [string, string[]][] = [
      ['clusterctl grant itself admin', ['grant', 'bot', 'admin']],
      ['clusterctl widen its grant', ['grant', 'bot', 'agent', '--apps', '*']],
      ['clusterctl create an identity', ['identity', 'create', 'evil3']],
      ['clusterctl disable the admin', ['identity', 'disable', 'admin']],
      ['clusterctl list identities', ['identities']],
      ['clusterctl issue itself a token', ['token', 'issue', 'bot']],
      ['clusterctl issue the admin a token', ['token', 'issue', 'admin']],
      ["clusterctl revoke the admin's token", ['token', 'revoke', adminTokenId]],
      ['clusterctl define a role', ['role', 'define', 'mine3', '--permissions', '[{"ops":["admin"],"apps":"*"}]']],
      ['clusterctl remove a role', ['role', 'remove', 'agent']],
      ['clusterctl ungrant the admin', ['ungrant', 'admin', 'admin']],
      ['clusterctl verify the trail', ['audit', 'verify']],
      ['clusterctl take a checkpoint', ['audit', 'checkpoint']],
      ['clusterctl deploy an app not granted', ['deploy', payrollDir, '--regions', 'eu']],
      ['clusterctl deploy its app to a region not granted', ['deploy', shopDir, '--regions', 'us']],
      ['clusterctl roll back an app not granted', ['rollback', 'payroll']],
      ['clusterctl abort an app not granted', ['abort', 'payroll']],
      ['clusterctl status of an app not granted', ['status', 'payroll']],
      ['clusterctl drain a node', ['drain', 'eu2', '--no-wait']],
    ];
    for (const [what, args] of ctlAttempts) await ctl(what, args);

    // --- Raft over gRPC, without a certificate the cluster's CA signed, or with one that names
    // another node: the TLS handshake fails, or the call is refused for its sender; either way
    // the node (or the control plane) records it. ---
    const foreignDir = await makeTlsDir(['eu2'], 'lockstep-tls-foreign-');
    const ca = readFileSync(join(tlsDir, 'ca.pem'));
    const impostor = credentials.createSsl(ca, readFileSync(join(tlsDir, 'us1-key.pem')), readFileSync(join(tlsDir, 'us1.pem')));
    const grpcCases: [string, string, ChannelCredentials, 'handshake' | 'certified'][] = [
      ['Raft messages in plaintext', 'eu1', credentials.createInsecure(), 'handshake'],
      ['Raft messages over TLS without a client certificate', 'eu1', credentials.createSsl(ca), 'handshake'],
      ["Raft messages with another CA's certificate", 'eu1', credentials.createSsl(readFileSync(join(foreignDir, 'ca.pem')), readFileSync(join(foreignDir, 'eu2-key.pem')), readFileSync(join(foreignDir, 'eu2.pem'))), 'handshake'],
      ["Raft messages to the control plane's group in plaintext", 'c1', credentials.createInsecure(), 'handshake'],
      ["Raft messages claiming eu2 with us1's certificate", 'eu1', impostor, 'certified'],
    ];
    const grpcAddress = (id: string): string => `127.0.0.1:${(id === 'c1' ? (fleet.control[0] as ClusterNode) : fleet.node(id)).grpcPort}`;
    const termBefore = await shopTerm(fleet, 'eu1');
    for (const [what, target, creds, expected] of grpcCases) {
      const group = target === 'c1' ? 'control' : 'shop';
      const outcome = await sendRawBatch(grpcAddress(target), creds, 'eu2', group, [heartbeat('eu2', target, termBefore + 1000)]);
      const surface = target === 'c1' ? 'control' : `node:${target}`;
      const actor = expected === 'handshake' ? 'uncertified' : 'node:us1';
      attempts.push({ what, surface, request: expected === 'handshake' ? 'GRPC /TLS handshake' : 'GRPC /Raft', actor, outcome: outcome.error === null ? 'delivered' : `${outcome.error.code} ${outcome.error.details}`, succeeded: outcome.error === null });
      const read = await rawReadIndex(grpcAddress(target), creds, 'eu2', group);
      attempts.push({ what: what.replace('Raft messages', 'a ReadIndex'), surface, request: expected === 'handshake' ? 'GRPC /TLS handshake' : 'GRPC /ReadIndex', actor, outcome: read.error === null ? 'answered' : `${read.error.code}`, succeeded: read.error === null });
    }
    rmSync(foreignDir, { recursive: true, force: true });
    // No message got through: the group's term did not move to the one the heartbeats claimed.
    expect(await shopTerm(fleet, 'eu1')).toBeLessThan(termBefore + 1000);

    // --- Crafted control entries that reach apply (on a copy of the control state: the same
    // ControlMachine over a real LMDB store, as every member runs it). ---
    const applied = await craftedEntries(fleet, agentId, adminTokenId, revokedId);
    for (const entry of applied) attempts.push(entry);

    const audited = await auditedAttempts(fleet);
    // Checked elsewhere: clusterctl's requests below, apply's records on the copy.
    const unrecorded = attempts.filter((attempt) => !['clusterctl', 'apply'].includes(attempt.surface) && !audited.take(attempt));
    const clusterctlRecorded = attempts.filter((attempt) => attempt.surface === 'clusterctl').filter(() => audited.takeAny('control', 'bot'));
    const succeeded = attempts.filter((attempt) => attempt.succeeded);
    const distinct = new Set(attempts.map((attempt) => `${attempt.surface} ${attempt.what}`));
    process.stdout.write(
      `agent boundary: ${attempts.length} attempts (${distinct.size} distinct) through ${new Set(attempts.map((attempt) => attempt.surface.replace(/:.*/, ''))).size} surfaces; ` +
        `${succeeded.length} succeeded; ${attempts.length - unrecorded.length - (attempts.filter((a) => a.surface === 'clusterctl').length - clusterctlRecorded.length)} are audit records\n`,
    );
    expect(succeeded.map((attempt) => `${attempt.surface}: ${attempt.what} -> ${attempt.outcome}`)).toEqual([]);
    expect(distinct.size).toBeGreaterThanOrEqual(100);
    expect(unrecorded.map((attempt) => `${attempt.surface} ${attempt.request} (${attempt.actor}): ${attempt.what}`), 'refused but not in the audit trail').toEqual([]);
    expect(clusterctlRecorded.length, 'every clusterctl attempt is a denied record of the control API').toBe(attempts.filter((attempt) => attempt.surface === 'clusterctl').length);
    // Nothing changed: the agent still holds exactly its grant, the admin is intact.
    const bot = await fleet.ctlJson<{ grants: { role: string; apps: unknown; regions: unknown }[]; tokens: { id: string }[] }>(['identity', 'show', 'bot']);
    expect(bot.grants.map((grant) => `${grant.role} ${JSON.stringify(grant.apps)} ${JSON.stringify(grant.regions)}`)).toEqual(['agent ["shop"] ["eu"]']);
    const identities = await fleet.ctlJson<{ identities: { id: string; disabled: boolean }[] }>(['identities']);
    expect(identities.identities.map((identity) => `${identity.id}${identity.disabled ? ' disabled' : ''}`).sort()).toEqual(['admin', 'bot', 'system']);
    const roles = await fleet.ctlJson<{ roles: { name: string; builtIn: boolean }[] }>(['roles']);
    expect(roles.roles.filter((role) => !role.builtIn)).toEqual([]);
    const verify = await fleet.ctl(['audit', 'verify']);
    expect(verify.code, verify.stdout).toBe(0);
  }, 240_000);
});

describe('the agent boundary: without credentials, and in the logs', () => {
  let fleet: Fleet;
  let authDir: string;

  beforeAll(async () => {
    authDir = mkdtempSync(join(tmpdir(), 'lockstep-auth-'));
    fleet = await Fleet.start({ nodes: nodesOf('eu:1'), authDir });
    const files = notesFiles('v1');
    const schema = `${files['schema.graphql'] as string}\ntype Payment @table(audit: true) {\n  id: ID @primaryKey\n  amount: Float\n}\n`;
    const deployed = await fleet.ctl(['deploy', writeApp('shop', { ...files, 'schema.graphql': schema, 'config.yaml': 'name: shop\nroles:\n  agent:\n    Payment: { read: false }\n' }), '--regions', 'eu', '--replicas', '1', '--timeout', '90s']);
    expect(deployed.code, deployed.stderr).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await fleet?.close();
    rmSync(authDir, { recursive: true, force: true });
  }, 60_000);

  it('refuses an unauthenticated request to every endpoint, 401 problem+json, and changes nothing', async () => {
    const control = fleet.controlUrl;
    const node = fleet.node('eu1').base;
    const json = { 'content-type': 'application/json' };
    const endpoints: [string, string, string, Record<string, string>?][] = [
      [control, 'GET', '/_health'],
      [control, 'GET', '/_topology'],
      [control, 'POST', '/v1/heartbeat', json],
      [control, 'GET', '/v1/whoami'],
      [control, 'GET', '/v1/nodes'],
      [control, 'POST', '/v1/nodes/eu1/drain', json],
      [control, 'POST', '/v1/nodes/eu1/undrain', json],
      [control, 'GET', '/v1/apps'],
      [control, 'GET', '/v1/apps/shop'],
      [control, 'POST', '/v1/apps/shop/deploy', json],
      [control, 'POST', '/v1/apps/shop/rollback', json],
      [control, 'POST', '/v1/apps/shop/abort', json],
      [control, 'GET', '/v1/audit'],
      [control, 'GET', '/v1/audit/checkpoint'],
      [control, 'GET', '/v1/audit/verify'],
      [control, 'GET', '/v1/identities'],
      [control, 'POST', '/v1/identities', json],
      [control, 'GET', '/v1/identities/admin'],
      [control, 'PATCH', '/v1/identities/admin', json],
      [control, 'POST', '/v1/identities/admin/grants', json],
      [control, 'DELETE', '/v1/identities/admin/grants/admin'],
      [control, 'GET', '/v1/roles'],
      [control, 'POST', '/v1/roles', json],
      [control, 'DELETE', '/v1/roles/agent'],
      [control, 'GET', '/v1/tokens'],
      [control, 'POST', '/v1/tokens', json],
      [control, 'DELETE', '/v1/tokens/0123456789abcdef'],
      [control, 'POST', '/mcp', json],
      [control, 'GET', '/v1/apps/shop/schema'],
      [control, 'GET', '/v1/no-such-endpoint'],
      [control, 'GET', '/'],
      [node, 'GET', '/_health'],
      [node, 'GET', '/_status'],
      [node, 'GET', '/_topology'],
      [node, 'GET', '/metrics'],
      [node, 'GET', '/_audit/shop'],
      [node, 'GET', '/_audit/shop/verify'],
      [node, 'GET', '/_no-such-endpoint'],
      ...['learners', 'promote', 'remove', 'stage', 'activate', 'abort', 'faults'].map((operation): [string, string, string, Record<string, string>] => [node, 'POST', operation === 'faults' ? '/_admin/faults' : `/_admin/shop/${operation}`, json]),
      [node, 'GET', '/shop/Note/n1'],
      [node, 'HEAD', '/shop/Note/n1'],
      [node, 'OPTIONS', '/shop/Note/n1'],
      [node, 'PUT', '/shop/Note/n1', json],
      [node, 'PATCH', '/shop/Note/n1', json],
      [node, 'DELETE', '/shop/Note/n1'],
      [node, 'GET', '/shop/Note/'],
      [node, 'GET', '/shop/Note/?text=x'],
      [node, 'POST', '/shop/Note/', json],
      [node, 'DELETE', '/shop/Note/?text=x'],
      [node, 'GET', '/shop/Hello/'],
      [node, 'GET', '/shop/Note/', { accept: 'text/event-stream' }],
      [node, 'GET', '/nope'],
      [node, 'GET', '/'],
    ];
    for (const [base, method, path, headers] of endpoints) {
      const response = await fetch(`${base}${path}`, { method, headers: headers ?? {}, ...(headers?.['content-type'] === undefined ? {} : { body: '{"text":"written","id":"x1","regions":["eu"]}' }), signal: AbortSignal.timeout(requestTimeoutMs) });
      expect(response.status, `${method} ${base === control ? 'control' : 'node'} ${path}`).toBe(401);
      expect(response.headers.get('www-authenticate'), `${method} ${path}`).toMatch(/^Bearer realm="lockstep"/);
      if (method !== 'HEAD') expect(response.headers.get('content-type'), `${method} ${path}`).toBe('application/problem+json');
      await response.body?.cancel();
    }
    // WebSocket: refused before the upgrade.
    const status = await new Promise<number>((resolveStatus) => {
      const socket = new WebSocket(`${node.replace('http', 'ws')}/shop/Note/`);
      socket.once('open', () => resolveStatus(101));
      socket.once('unexpected-response', (_request, response) => resolveStatus(response.statusCode ?? 0));
      socket.once('error', () => resolveStatus(0));
    });
    expect(status).toBe(401);
    process.stdout.write(`unauthenticated: ${endpoints.length + 1} endpoints walked, every one refused with 401\n`);
    // Nothing was written, drained or deployed.
    const admin = fleet.adminHeaders();
    expect((await fetch(`${node}/shop/Note/n1`, { headers: admin })).status).toBe(404);
    expect((await fetch(`${node}/shop/Note/`, { headers: admin }).then((response) => response.json())) as unknown[]).toEqual([]);
    const nodes = await fleet.ctlJson<{ nodes: { id: string; state: string }[] }>(['nodes']);
    expect(nodes.nodes.map((entry) => entry.state)).toEqual(['up']);
    const apps = await fleet.ctlJson<{ apps: { name: string; activeVersion: number }[] }>(['apps']);
    expect(apps.apps.map((app) => `${app.name} ${app.activeVersion}`)).toEqual(['shop 1']);
    // Each refusal is in the trail.
    await sleep(2_500);
    const trail = await fleet.ctlJson<{ records: AuditJson[] }>(['audit', '--actor', 'unauthenticated', '--limit', '10000']);
    expect(trail.records.length).toBeGreaterThanOrEqual(endpoints.length);
  }, 120_000);

  it('audits every write to a table declared @table(audit: true) with the identity that made it; an agent cannot read the trail', async () => {
    for (const args of [['identity', 'create', 'clerk', '--kind', 'service'], ['grant', 'clerk', 'agent', '--apps', 'shop']]) expect((await fleet.ctl(args)).code).toBe(0);
    const clerk = (await fleet.ctl(['token', 'issue', 'clerk'])).stdout.trim();
    const node = fleet.node('eu1').base;
    await pollUntil(async () => ((await fetch(`${node}/shop/Note/none`, { headers: { authorization: `Bearer ${clerk}` } })).status === 404 ? true : undefined), 15_000, 'eu1 to know clerk');
    const as = (token: string, method: string, path: string, body?: unknown): Promise<Response> =>
      fetch(`${node}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    expect((await as(clerk, 'PUT', '/shop/Payment/p1', { amount: 10 })).status).toBe(204);
    expect((await as(clerk, 'PATCH', '/shop/Payment/p1', { amount: 11 })).status).toBe(204);
    // The app's config.yaml denies the agent role reads of Payment (its grant alone would allow them).
    const read = await as(clerk, 'GET', '/shop/Payment/p1');
    expect(read.status).toBe(403);
    expect(((await read.json()) as { detail: string }).detail).toMatch(/app 'shop' denies 'read' on table 'Payment'/);
    expect((await as(clerk, 'GET', '/shop/Note/n1')).status).toBe(404);
    expect((await as(clerk, 'PUT', '/shop/Note/n1', { text: 'not audited' })).status).toBe(204);
    const admin = fleet.adminToken() as string;
    expect((await as(admin, 'DELETE', '/shop/Payment/p1')).status).toBe(204);
    const trail = (await (await as(admin, 'GET', '/_audit/shop')).json()) as { records: { actor: string; op: string; table: string; id: string; value?: unknown }[] };
    expect(trail.records.map((r) => `${r.actor} ${r.op} ${r.table}/${r.id} ${JSON.stringify(r.value ?? null)}`)).toEqual(['clerk put Payment/p1 {"amount":10,"id":"p1"}', 'clerk patch Payment/p1 {"amount":11}', 'admin delete Payment/p1 null']);
    const verify = (await (await as(admin, 'GET', '/_audit/shop/verify')).json()) as { ok: boolean; records: number };
    expect(verify).toMatchObject({ ok: true, records: 3 });
    // The agent may write the table, not read or write its trail.
    expect((await as(clerk, 'GET', '/_audit/shop')).status).toBe(403);
    expect((await as(clerk, 'DELETE', '/_audit/shop')).status).toBe(403);
    expect((await as(admin, 'DELETE', '/_audit/shop')).status).toBe(405);
  }, 60_000);

  it('writes no secret in any log line: tokens, their secrets and hashes never appear in a process output', async () => {
    const admin = fleet.adminToken() as string;
    const system = readFileSync(join(authDir, 'system.token'), 'utf8').trim();
    const identity = await fleet.ctl(['identity', 'create', 'ci', '--kind', 'service']);
    expect(identity.code).toBe(0);
    const issued = (await fleet.ctl(['token', 'issue', 'ci'])).stdout.trim();
    const narrowed = attenuate(issued, { ops: ['read'] });
    // Use them, wrongly and rightly, so that every path that could log them runs.
    for (const token of [admin, system, issued, narrowed, `${issued}x`, issued.slice(0, -3)]) {
      await fetch(`${fleet.node('eu1').base}/shop/Note/n1`, { headers: { authorization: `Bearer ${token}` } });
      await fetch(`${fleet.controlUrl}/v1/identities`, { headers: { authorization: `Bearer ${token}` } });
    }
    await sleep(1_500);
    const secrets = [admin, system, issued, narrowed].flatMap((token) => [token, token.slice(-24)]);
    for (const process of [...fleet.control, ...fleet.nodes]) {
      const output = process.output();
      expect(output.length, `${process.id} wrote some output`).toBeGreaterThan(0);
      for (const secret of secrets) expect(output.includes(secret), `${process.id}'s output holds a secret`).toBe(false);
    }
    // The trail names tokens by id only.
    const trail = await fleet.ctl(['audit', '--limit', '10000', '-o', 'json']);
    for (const secret of secrets) expect(trail.stdout.includes(secret)).toBe(false);
  }, 60_000);
});

/** The term of the shop group on `node`, from its /_status. */
async function shopTerm(fleet: Fleet, node: string): Promise<number> {
  const status = (await (await fetch(`${fleet.node(node).base}/_status`, { headers: fleet.adminHeaders() })).json()) as { apps: { name: string; term: number }[] };
  return status.apps.find((app) => app.name === 'shop')?.term ?? 0;
}

/** Entries an agent could only get into the log through a bug, applied by the control plane's
 *  own state machine over a copy of the live store: each must be refused as denied, recorded,
 *  and change nothing. */
async function craftedEntries(fleet: Fleet, agentTokenId: string, adminTokenId: string, revokedTokenId: string): Promise<Attempt[]> {
  const member = fleet.control[0];
  if (member === undefined) throw new Error('no control plane');
  const copyDir = mkdtempSync(join(tmpdir(), 'lockstep-crafted-'));
  // A consistent copy of the live environment (LMDB copies with a read transaction).
  const live = new ControlStore(join(member.dataDir, 'control', 'lmdb'));
  await live.root.backup(copyDir, false);
  await live.close();
  const store = new ControlStore(copyDir);
  const machine = new ControlMachine(store);
  const before = JSON.stringify(machine.state.auth.snapshot());
  const token = issueToken();
  const stored = { id: token.id, hash: token.hash, publicKey: token.publicKey };
  const bundle = { hash: 'a'.repeat(64), files: { 'schema.graphql': 'type A @table { id: ID @primaryKey }' } };
  const entries: [string, string, string | undefined, ControlCommand][] = [
    ['grant itself admin', 'bot', agentTokenId, { op: 'grant.add', identity: 'bot', role: 'admin', apps: '*', regions: '*' }],
    ['widen its own grant', 'bot', agentTokenId, { op: 'grant.add', identity: 'bot', role: 'agent', apps: '*', regions: '*' }],
    ['create an identity', 'bot', agentTokenId, { op: 'identity.create', id: 'evil', kind: 'user', description: '' }],
    ['disable the admin', 'bot', agentTokenId, { op: 'identity.update', id: 'admin', disabled: true }],
    ['issue itself a token', 'bot', agentTokenId, { op: 'token.issue', identity: 'bot', token: stored, scope: {}, description: '' }],
    ['issue the admin a token it holds', 'bot', agentTokenId, { op: 'token.issue', identity: 'admin', token: stored, scope: {}, description: '' }],
    ["revoke the admin's token", 'bot', agentTokenId, { op: 'token.revoke', id: adminTokenId }],
    ['define a role', 'bot', agentTokenId, { op: 'role.define', name: 'mine', description: '', permissions: [{ ops: ['admin'], apps: '*' }] }],
    ['remove the admin grant', 'bot', agentTokenId, { op: 'grant.remove', identity: 'admin', role: 'admin' }],
    ['bootstrap again', 'bot', agentTokenId, { op: 'auth.bootstrap', admin: stored, system: { ...stored, id: 'b'.repeat(16) } }],
    ['deploy an app not granted', 'bot', agentTokenId, { op: 'app.deploy', name: 'payroll', spec: { regions: ['eu'], replicas: 3, survive: undefined }, bundle, allowBreaking: true, expectRevision: undefined }],
    ['deploy its app to a region not granted', 'bot', agentTokenId, { op: 'app.deploy', name: 'shop', spec: { regions: ['us'], replicas: 1, survive: undefined }, bundle, allowBreaking: true, expectRevision: undefined }],
    ['roll back an app not granted', 'bot', agentTokenId, { op: 'app.rollback', name: 'payroll', to: 1 }],
    ['drain a node', 'bot', agentTokenId, { op: 'node.drain', id: 'eu1', drain: 'draining' }],
    ["act as the control plane's rollout (activate)", 'bot', agentTokenId, { op: 'app.activated', name: 'payroll', version: 1, hash: bundle.hash }],
    ['seal the trail', 'bot', agentTokenId, { op: 'audit.seal', seq: 1, hash: 'c'.repeat(64), at: new Date().toISOString(), signer: 'c1', signature: 'x' }],
    ['register a node', 'bot', agentTokenId, { op: 'node.register', node: { id: 'rogue', region: 'eu', zone: undefined, httpUrl: 'http://127.0.0.1:1', grpcAddress: '127.0.0.1:2' } }],
    ["use the admin's token id", 'bot', adminTokenId, { op: 'grant.add', identity: 'bot', role: 'admin', apps: '*', regions: '*' }],
    ['use a revoked token', 'bot', revokedTokenId, { op: 'app.deploy', name: 'shop', spec: { regions: ['eu'], replicas: 3, survive: undefined }, bundle, allowBreaking: true, expectRevision: undefined }],
    ['claim no token at all, with a caveat-free scope', 'bot', undefined, { op: 'grant.add', identity: 'bot', role: 'admin', apps: '*', regions: '*' }],
    ['as a control-plane duty, grant admin', 'control:c1', undefined, { op: 'grant.add', identity: 'bot', role: 'admin', apps: '*', regions: '*' }],
    ['as a control-plane duty, issue a token', 'control:rollout', undefined, { op: 'token.issue', identity: 'bot', token: stored, scope: {}, description: '' }],
    ['as a control-plane duty, deploy', 'control:reconciler', undefined, { op: 'app.deploy', name: 'payroll', spec: { regions: ['eu'], replicas: 3, survive: undefined }, bundle, allowBreaking: true, expectRevision: undefined }],
    ['as a node, grant admin', 'node:eu1', undefined, { op: 'grant.add', identity: 'bot', role: 'admin', apps: '*', regions: '*' }],
    ['as a node, register another node', 'node:eu1', undefined, { op: 'node.register', node: { id: 'eu2', region: 'eu', zone: undefined, httpUrl: 'http://127.0.0.1:1', grpcAddress: '127.0.0.1:2' } }],
    ['as an identity that does not exist', 'ghost', undefined, { op: 'grant.add', identity: 'bot', role: 'admin', apps: '*', regions: '*' }],
  ];
  const results: Attempt[] = [];
  let index = machine.lastAppliedIndex();
  const headBefore = store.auditHead()?.seq ?? 0;
  store.root.transactionSync(() => {
    for (const [what, actor, tokenId, command] of entries) {
      index += 1;
      const entry: ControlEntry = { at: Date.now(), actor, ...(tokenId === undefined ? {} : { token: tokenId }), command };
      const result = machine.apply(index, entry);
      results.push({ what: `crafted entry: ${what}`, surface: 'apply', request: '', actor, outcome: result.ok ? 'applied' : `refused: ${result.reason}`, succeeded: result.ok || result.denied !== true });
    }
  });
  const after = JSON.stringify(machine.state.auth.snapshot());
  expect(after, 'crafted entries changed no identity, token, grant or role').toBe(before);
  const records = [...store.auditRecords(headBefore + 1)].map(({ bytes }) => JSON.parse(bytes.toString('utf8')) as AuditRecord);
  expect(records.map((record) => record.outcome), 'each crafted entry is a denied audit record').toEqual(entries.map(() => 'denied'));
  const chain = verifyChain(store.auditRecords(), store.auditHead() ?? { seq: 0, hash: '' });
  expect(chain.ok, JSON.stringify(chain.firstBad)).toBe(true);
  await store.close();
  rmSync(copyDir, { recursive: true, force: true });
  return results;
}

/** The trail's denied records, to be matched one by one with the attempts. */
async function auditedAttempts(fleet: Fleet): Promise<{ take: (attempt: Attempt) => boolean; takeAny: (surface: string, actor: string) => boolean }> {
  // Nodes report refusals with their next heartbeat; the control plane batches them.
  await sleep(2_500);
  const listing = await fleet.ctlJson<{ records: AuditJson[] }>(['audit', '--limit', '10000']);
  const pool = listing.records.filter((record) => record.outcome === 'denied' && record.op === 'audit.denied');
  const key = (surface: string, actor: string, request: string): string => `${surface}|${actor}|${request}`;
  const counts = new Map<string, number>();
  for (const record of pool) {
    const request = record.detail.replace(/ from .*$/, '');
    const k = key(record.target, record.actor, request);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const take = (k: string): boolean => {
    const left = counts.get(k) ?? 0;
    if (left === 0) return false;
    counts.set(k, left - 1);
    return true;
  };
  return {
    take: (attempt) => take(key(attempt.surface, attempt.actor, attempt.request)),
    takeAny: (surface, actor) => {
      for (const [k, left] of counts) if (left > 0 && k.startsWith(`${surface}|${actor}|`)) return take(k);
      return false;
    },
  };
}
