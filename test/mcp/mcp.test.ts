// `lockstep mcp` with the SDK's own MCP client over stdio, against real processes (a secured
// control plane and three nodes in eu): an agent token deploys a new version of the app it is
// granted (an additive schema change), sees each replica's progress, validates it, writes and
// reads data, rolls back, and reads the audit records of each step; its attempts through the
// tools to deploy an app it was not granted, to write the cluster's own tables, to widen its
// token and to read others' audit records are refused by the control plane or the nodes, and
// each is an audit record. A reader's token gets no tool that changes anything.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeApp } from '../support/app-files.js';
import { clusterCliPath, pollUntil, sleep } from '../support/cluster.js';
import { Fleet, nodesOf } from '../support/fleet.js';
import { notesFiles, notesSchema } from '../support/notes-app.js';

interface ToolResult {
  readonly isError?: boolean;
  readonly structuredContent?: Record<string, unknown>;
  readonly content: { type: string; text?: string }[];
}

describe('lockstep mcp', () => {
  let fleet: Fleet;
  let authDir: string;
  let agentToken = '';
  let readerToken = '';
  const clients: Client[] = [];

  async function connect(token: string, extra: readonly string[] = []): Promise<Client> {
    const transport = new StdioClientTransport({ command: process.execPath, args: [clusterCliPath, 'mcp', '--control', fleet.controlUrl, ...extra], env: { ...process.env, LOCKSTEP_TOKEN: token } as Record<string, string>, stderr: 'pipe' });
    const client = new Client({ name: 'lockstep-test', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    return client;
  }

  const call = async (client: Client, name: string, args: Record<string, unknown>, onprogress?: (message: string) => void): Promise<ToolResult> =>
    (await client.callTool({ name, arguments: args }, undefined, { timeout: 120_000, ...(onprogress === undefined ? {} : { onprogress: (progress: { message?: string }) => onprogress(progress.message ?? '') }) })) as ToolResult;

  beforeAll(async () => {
    authDir = mkdtempSync(join(tmpdir(), 'lockstep-auth-'));
    fleet = await Fleet.start({ nodes: nodesOf('eu:3'), authDir });
    for (const name of ['shop', 'payroll']) await fleet.deploy(writeApp(name, { ...notesFiles('v1'), 'config.yaml': `name: ${name}\n` }), 'eu');
    for (const args of [
      ['identity', 'create', 'bot', '--kind', 'service'],
      ['grant', 'bot', 'agent', '--apps', 'shop', '--regions', 'eu'],
      ['identity', 'create', 'viewer', '--kind', 'service'],
      ['grant', 'viewer', 'reader', '--apps', 'shop'],
    ]) expect((await fleet.ctl(args)).code).toBe(0);
    agentToken = (await fleet.ctl(['token', 'issue', 'bot'])).stdout.trim();
    readerToken = (await fleet.ctl(['token', 'issue', 'viewer'])).stdout.trim();
    await pollUntil(async () => ((await fetch(`${fleet.node('eu1').base}/shop/Note/x`, { headers: { authorization: `Bearer ${agentToken}` } })).status === 404 ? true : undefined), 15_000, 'the nodes to know the agent');
  }, 240_000);

  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await fleet?.close();
    rmSync(authDir, { recursive: true, force: true });
  }, 60_000);

  it('offers a reader no tool that changes anything', async () => {
    const reader = await connect(readerToken);
    const names = (await reader.listTools()).tools.map((tool) => tool.name).sort();
    expect(names).toEqual(['app_status', 'audit_log', 'list_apps', 'list_nodes', 'query', 'read_record', 'whoami']);
  }, 60_000);

  it('deploys, validates, writes, rolls back and reads the audit of each step, with an agent token', async () => {
    const agent = await connect(agentToken);
    const tools = (await agent.listTools()).tools;
    expect(tools.map((tool) => tool.name).sort()).toEqual(['abort', 'app_status', 'audit_log', 'delete_record', 'deploy', 'list_apps', 'list_nodes', 'plan_deploy', 'query', 'read_record', 'rollback', 'validate', 'whoami', 'write_record']);
    expect(tools.find((tool) => tool.name === 'deploy')?.inputSchema.properties).toHaveProperty('regions');

    // Version 2: an additive schema change (a new attribute), validated for 2 s after it activates.
    const config = 'name: shop\nchecks:\n  - name: greets\n    path: /Hello/\n    contains: { greeting: v2 }\n';
    const files = { 'schema.graphql': notesSchema.replace('text: String!', 'text: String!\n  tag: String'), 'config.yaml': config, 'resources.ts': notesFiles('v2')['resources.ts'] as string };
    const plan = await call(agent, 'plan_deploy', { app: 'shop', files, regions: ['eu'] });
    expect(plan.isError, JSON.stringify(plan.content)).toBeFalsy();
    expect(plan.structuredContent?.version).toMatchObject({ current: 1, next: 2 });
    expect(plan.structuredContent?.schema).toEqual({ additive: [expect.stringMatching(/tag/)], breaking: [] });
    // Resources: its app's schema (payroll's is not listed), and the topology.
    const listed = (await agent.listResources()).resources.map((resource) => resource.uri);
    expect(listed).toEqual(expect.arrayContaining(['lockstep://topology', 'lockstep://apps/shop/schema']));
    expect(listed).not.toContain('lockstep://apps/payroll/schema');
    const schema = await agent.readResource({ uri: 'lockstep://apps/shop/schema' });
    expect((schema.contents[0] as { text: string }).text).toContain('type Note @table');
    const progress: string[] = [];
    const deployed = await call(agent, 'deploy', { app: 'shop', files, regions: ['eu'], validateForSeconds: 2 }, (message) => progress.push(message));
    expect(deployed.isError, JSON.stringify(deployed.content)).toBeFalsy();
    expect(deployed.structuredContent).toMatchObject({ outcome: 'activated', app: 'shop', version: 2 });
    // One report per replica's verdict (eu1, eu2, eu3 each prepared it), in progress notifications.
    for (const node of ['eu1', 'eu2', 'eu3']) expect(progress.some((message) => message.startsWith(`${node}: prepared`)), `${node} in ${JSON.stringify(progress)}`).toBe(true);

    // Validate: the app's declared check runs on every replica against the active version.
    const validated = await call(agent, 'validate', { app: 'shop' });
    expect(validated.isError, JSON.stringify(validated.content)).toBeFalsy();
    expect(validated.structuredContent).toMatchObject({ app: 'shop', activeVersion: 2, passed: true });
    expect((validated.structuredContent?.replicas as { node: string; total: number; failed: unknown[] }[]).map((replica) => `${replica.node} ${replica.total} ${replica.failed.length}`).sort()).toEqual(['eu1 1 0', 'eu2 1 0', 'eu3 1 0']);

    const written = await call(agent, 'write_record', { app: 'shop', table: 'Note', id: 'n1', value: { text: 'hello', tag: 'new' } });
    expect(written.isError, JSON.stringify(written.content)).toBeFalsy();
    const read = await call(agent, 'read_record', { app: 'shop', table: 'Note', id: 'n1' });
    expect(read.structuredContent?.body).toMatchObject({ id: 'n1', text: 'hello', tag: 'new' });

    const rolledBack = await call(agent, 'rollback', { app: 'shop' });
    expect(rolledBack.isError, JSON.stringify(rolledBack.content)).toBeFalsy();
    expect(rolledBack.structuredContent).toMatchObject({ outcome: 'activated', app: 'shop' });
    const status = await call(agent, 'app_status', { app: 'shop' });
    const versions = status.structuredContent?.versions as { version: number; hash: string }[];
    const active = versions.find((version) => version.version === (status.structuredContent?.activeVersion as number));
    expect(active?.hash, 'the rollback brings back version 1 code').toBe(versions[0]?.hash);

    const audit = await call(agent, 'audit_log', { app: 'shop', limit: 10_000 });
    const records = (audit.structuredContent?.records ?? []) as { actor: string; op: string; outcome: string }[];
    const steps = records.map((record) => `${record.actor} ${record.op} ${record.outcome}`);
    expect(steps).toEqual(expect.arrayContaining(['bot app.deploy ok', 'control:rollout app.activated ok', 'control:validation app.validated ok', 'bot app.rollback ok']));
  }, 240_000);

  it("refuses, at the control plane or a node, every tool call outside the agent's grant, and audits it", async () => {
    const agent = await connect(agentToken);
    const before = await deniedCount(fleet);
    const attempts: [string, string, Record<string, unknown>][] = [
      ['deploy an app not granted', 'deploy', { app: 'payroll', files: notesFiles('v9'), regions: ['eu'] }],
      ['plan a deploy of an app not granted', 'plan_deploy', { app: 'payroll', files: notesFiles('v9'), regions: ['eu'] }],
      ['roll back an app not granted', 'rollback', { app: 'payroll' }],
      ['abort an app not granted', 'abort', { app: 'payroll' }],
      ['widen to a region not granted', 'deploy', { app: 'shop', files: notesFiles('v9'), regions: ['eu', 'us'] }],
      ['read an app not granted', 'read_record', { app: 'payroll', table: 'Note', id: 'n1' }],
      ['write an app not granted', 'write_record', { app: 'payroll', table: 'Note', id: 'n1', value: { text: 'mine' } }],
      ['write the role table (grant itself a role)', 'write_record', { app: 'system', table: 'hdb_role', id: 'agent', value: { permission: { super_user: true } } }],
      ['write the identity table', 'write_record', { app: 'control', table: 'identity', id: 'bot', value: { grants: ['admin'] } }],
      ['edit the audit log', 'write_record', { app: 'control', table: 'audit', id: '3', value: { actor: 'nobody' } }],
      ['delete an audit record', 'delete_record', { app: 'control', table: 'audit', id: '3' }],
      ["read another app's audit records", 'audit_log', { app: 'payroll' }],
      ['status of an app not granted', 'app_status', { app: 'payroll' }],
      ['validate an app not granted', 'validate', { app: 'payroll' }],
    ];
    let succeeded = 0;
    for (const [what, tool, args] of attempts) {
      const result = await call(agent, tool, args);
      if (result.isError !== true) succeeded += 1;
      expect(result.isError, `${what}: ${JSON.stringify(result.content)}`).toBe(true);
      expect(result.content[0]?.text, what).toMatch(/Forbidden|forbidden/);
    }
    // A resource outside the grant: the control plane refuses it too.
    await expect(agent.readResource({ uri: 'lockstep://apps/payroll/schema' })).rejects.toThrow(/Forbidden/);
    // A narrowed server (--operations read) cannot even offer a write; its calls are refused too.
    const narrowed = await connect(agentToken, ['--operations', 'read', '--expires', '1h']);
    expect((await narrowed.listTools()).tools.map((tool) => tool.name)).not.toContain('deploy');
    const whoami = await call(narrowed, 'whoami', {});
    expect(JSON.stringify(whoami.structuredContent?.scopes)).toContain('"ops":["read"]');
    await sleep(1_500);
    const recorded = (await deniedCount(fleet)) - before;
    process.stdout.write(`mcp: ${attempts.length} attempts outside the grant, ${succeeded} succeeded, ${recorded} audit records of refusals\n`);
    expect(succeeded).toBe(0);
    expect(recorded).toBeGreaterThanOrEqual(attempts.length);
  }, 120_000);
});

describe('lockstep mcp over streamable HTTP, on the control plane', () => {
  let fleet: Fleet;
  let authDir: string;

  beforeAll(async () => {
    authDir = mkdtempSync(join(tmpdir(), 'lockstep-auth-'));
    fleet = await Fleet.start({ nodes: nodesOf('eu:1'), authDir });
    const deployed = await fleet.ctl(['deploy', writeApp('shop', { ...notesFiles('v1'), 'config.yaml': 'name: shop\n' }), '--regions', 'eu', '--replicas', '1', '--timeout', '90s']);
    expect(deployed.code, deployed.stderr).toBe(0);
    for (const args of [['identity', 'create', 'bot', '--kind', 'service'], ['grant', 'bot', 'agent', '--apps', 'shop']]) expect((await fleet.ctl(args)).code).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await fleet?.close();
    rmSync(authDir, { recursive: true, force: true });
  }, 60_000);

  it("serves a session bound to the bearer token that opened it, and refuses one without a token", async () => {
    const token = (await fleet.ctl(['token', 'issue', 'bot'])).stdout.trim();
    const url = new URL(`${fleet.controlUrl}/mcp`);
    const client = new Client({ name: 'lockstep-test-http', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    const names = (await client.listTools()).tools.map((tool) => tool.name);
    expect(names).toEqual(expect.arrayContaining(['deploy', 'rollback', 'list_apps']));
    const apps = (await client.callTool({ name: 'list_apps', arguments: {} })) as ToolResult;
    expect((apps.structuredContent?.apps as { name: string }[]).map((app) => app.name)).toEqual(['shop']);
    const whoami = (await client.callTool({ name: 'whoami', arguments: {} })) as ToolResult;
    expect(whoami.structuredContent?.identity).toBe('bot');
    await client.close();
    // Without a token: 401 before any session exists, and the attempt is recorded.
    const bare = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) });
    expect(bare.status).toBe(401);
    await sleep(1_000);
    const trail = await fleet.ctlJson<{ records: { target: string; detail: string; outcome: string }[] }>(['audit', '--actor', 'unauthenticated', '--limit', '10000']);
    expect(trail.records.some((record) => record.outcome === 'denied' && record.detail.startsWith('POST /mcp'))).toBe(true);
  }, 60_000);
});

async function deniedCount(fleet: Fleet): Promise<number> {
  const listing = await fleet.ctlJson<{ records: { actor: string; outcome: string }[] }>(['audit', '--actor', 'bot', '--limit', '10000']);
  return listing.records.filter((record) => record.outcome === 'denied').length;
}
