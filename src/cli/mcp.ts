// `lockstep mcp`: the control plane's operations as Model Context Protocol tools, over stdio, for
// agent hosts that spawn it. The caller's token is the only authority: every tool is a call to
// the control API (or to a node's REST API) carrying it, so the control plane and the nodes
// decide what is allowed - and record every refusal - not this server. The tool list is cut to
// the operations the token's grants hold (a convenience: hints are not enforcement). Started with
// --apps/--regions/--operations/--expires, the server first narrows the token (an attenuation,
// offline) and uses only the narrower one.
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { bundleBytesMax } from '../app/bundle.js';
import { attenuate } from '../security/tokens.js';
import { operations, type Operation, type Scope } from '../security/permissions.js';
import { deployRequest, followDeploy, type DeployRequest } from './app-deploy.js';
import { ControlClient, ExitError, problemText, type Json } from './control-client.js';

export interface McpOptions {
  readonly controlUrls: readonly string[];
  /** Absent: an open (development) cluster. */
  readonly token?: string;
  /** A narrowing of the token the server applies before anything else. */
  readonly narrowTo?: Scope;
}

/** Longest a deploy or rollback is followed before the tool answers that it is still going. */
const followTimeoutMsDefault = 120_000;
const nodeRequestTimeoutMs = 15_000;

function structured(body: Json, text?: string): CallToolResult {
  return { content: [{ type: 'text', text: text ?? JSON.stringify(body, null, 2) }], structuredContent: body };
}

function refused(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/** Runs a tool body; a refusal of the control plane or a node is an error result, not a crash. */
async function guarded(body: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof ExitError) return refused(error.message);
    return refused(error instanceof Error ? error.message : String(error));
  }
}

/** The operations the token's grants hold, as far as the control plane says (whoami, roles). */
async function heldOperations(client: ControlClient): Promise<Set<Operation>> {
  const whoami = await client.expect('GET', '/v1/whoami');
  if (whoami.open === true) return new Set(operations);
  const roles = ((await client.expect('GET', '/v1/roles')).roles ?? []) as { name: string; permissions: { ops: Operation[] }[] }[];
  const held = new Set<Operation>();
  for (const grant of (whoami.grants ?? []) as { role: string }[]) {
    for (const permission of roles.find((role) => role.name === grant.role)?.permissions ?? []) for (const op of permission.ops) held.add(op);
  }
  for (const scope of (whoami.scopes ?? []) as Scope[]) if (scope.ops !== undefined) for (const op of [...held]) if (!scope.ops.includes(op)) held.delete(op);
  return held;
}

/** An app's bundle given inline (file contents) or as a directory on this host. */
async function bundleRequest(app: string | undefined, dir: string | undefined, files: Record<string, string> | undefined, spec: { regions: string[]; replicas: number; allowBreaking: boolean; plan?: boolean; validateForMs?: number }): Promise<DeployRequest> {
  if ((dir === undefined) === (files === undefined)) throw new ExitError(1, 'give the app as dir (a directory on the server host) or files (name -> contents), one of the two');
  if (dir !== undefined) return deployRequest(dir, spec, app);
  const given = files as Record<string, string>;
  const bytes = Object.values(given).reduce((sum, text) => sum + Buffer.byteLength(text), 0);
  if (bytes > bundleBytesMax) throw new ExitError(1, `the app's files hold ${bytes} bytes; at most ${bundleBytesMax}`);
  if (app === undefined) throw new ExitError(1, 'an app given as files needs its name (app)');
  return {
    name: app,
    appPath: `/v1/apps/${encodeURIComponent(app)}`,
    body: { regions: spec.regions, replicas: spec.replicas, bundle: { files: given }, allowBreaking: spec.allowBreaking, ...(spec.plan === true ? { plan: true } : {}), ...(spec.validateForMs === undefined ? {} : { validateForMs: spec.validateForMs }) },
  };
}

export function createMcpServer(options: McpOptions): { server: McpServer; ready: Promise<void> } {
  const token = options.token === undefined || options.narrowTo === undefined ? options.token : attenuate(options.token, options.narrowTo);
  const client = new ControlClient(options.controlUrls, token);
  const server = new McpServer({ name: 'lockstep', version: '0.1.0' }, { capabilities: { logging: {}, resources: {} } });

  /** The nodes that host `app` and are up, its leader first. */
  const hostsOf = async (app: string): Promise<{ id: string; httpUrl: string }[]> => {
    const status = await client.expect('GET', `/v1/apps/${encodeURIComponent(app)}`);
    const nodes = ((await client.expect('GET', '/v1/nodes')).nodes ?? []) as { id: string; httpUrl: string; state: string }[];
    const members = ((status.members ?? []) as { node: string; leader: boolean }[]).sort((a, b) => Number(b.leader) - Number(a.leader));
    return members.flatMap((member) => nodes.filter((node) => node.id === member.node && node.state === 'up'));
  };

  /** A request to the REST API of a node that hosts `app` (`path` under /<app>, or a node path). */
  const nodeRequest = async (app: string, method: string, path: string, body?: unknown, target?: { id: string; httpUrl: string }): Promise<Json> => {
    const node = target ?? (await hostsOf(app))[0];
    if (node === undefined) throw new ExitError(1, `no node that hosts ${app} is up`);
    const response = await fetch(path.startsWith('/_') ? `${node.httpUrl}${path}` : `${node.httpUrl}/${encodeURIComponent(app)}${path}`, {
      method,
      headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(nodeRequestTimeoutMs),
    });
    const text = await response.text();
    let parsed: unknown = text === '' ? null : text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    if (response.status >= 300 && response.status !== 304) throw new ExitError(1, problemText({ status: response.status, body: (parsed ?? {}) as Json }));
    return { status: response.status, node: node.id, index: Number(response.headers.get('x-lockstep-index') ?? 0), body: parsed as Json };
  };

  const ready = (async () => {
    const held = await heldOperations(client);
    const has = (op: Operation): boolean => held.has(op);
    const readOnly = { readOnlyHint: true, openWorldHint: false } as const;

    server.registerTool('whoami', { description: 'The identity of the token in use, its grants and scopes.', annotations: readOnly }, () => guarded(async () => structured(await client.expect('GET', '/v1/whoami'))));
    server.registerTool('list_nodes', { description: 'Every node: id, region, zone, state, the apps it holds.', annotations: readOnly }, () => guarded(async () => structured(await client.expect('GET', '/v1/nodes'))));
    server.registerTool('list_apps', { description: 'The apps this token may see: placement, versions, what failure each survives.', annotations: readOnly }, () => guarded(async () => structured(await client.expect('GET', '/v1/apps'))));
    const appArg = { app: z.string().min(1).max(63).describe('the app name') };
    server.registerTool('app_status', { description: "One app: target and actual replicas, each replica's version, the rollout in progress, recent steps, history.", inputSchema: appArg, annotations: readOnly }, ({ app }) =>
      guarded(async () => structured(await client.expect('GET', `/v1/apps/${encodeURIComponent(app)}`))),
    );
    server.registerTool(
      'audit_log',
      { description: 'The audit trail, as far as this token may see it (its own actions and the apps it may read).', inputSchema: { app: z.string().optional(), actor: z.string().optional(), since: z.string().optional(), limit: z.number().int().min(1).max(10_000).optional() }, annotations: readOnly },
      ({ app, actor, since, limit }) =>
        guarded(async () => {
          const query = new URLSearchParams();
          for (const [key, value] of [['app', app], ['actor', actor], ['since', since], ['limit', limit === undefined ? undefined : String(limit)]] as const) if (value !== undefined) query.set(key, value);
          return structured(await client.expect('GET', `/v1/audit${query.size > 0 ? `?${query.toString()}` : ''}`));
        }),
    );

    // Resources: the fleet's topology, and each app's schema (the listing names the apps it may see).
    server.registerResource('topology', 'lockstep://topology', { description: 'Nodes, regions, URLs and where each app is placed', mimeType: 'application/json' }, async (uri) => ({
      contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(await client.expect('GET', '/_topology'), null, 2) }],
    }));
    server.registerResource(
      'app-schema',
      new ResourceTemplate('lockstep://apps/{app}/schema', {
        list: async () => ({
          resources: (((await client.expect('GET', '/v1/apps')).apps ?? []) as { name: string }[]).map((app) => ({ uri: `lockstep://apps/${encodeURIComponent(app.name)}/schema`, name: `${app.name} schema`, mimeType: 'application/graphql' })),
        }),
      }),
      { description: "An app's schema.graphql, of its active version", mimeType: 'application/graphql' },
      async (uri, variables) => {
        const app = String(variables.app ?? '');
        const body = await client.expect('GET', `/v1/apps/${encodeURIComponent(app)}/schema`);
        return { contents: [{ uri: uri.href, mimeType: 'application/graphql', text: String(body.schema ?? '') }] };
      },
    );

    const bundleArgs = {
      app: z.string().min(1).max(63).optional().describe("the app name (default: config.yaml's name, or the directory's)"),
      dir: z.string().optional().describe('the app directory, on the host this server runs on'),
      files: z.record(z.string(), z.string()).optional().describe('the app files, name -> contents (schema.graphql, config.yaml, resources.ts)'),
      regions: z.array(z.string()).min(1).describe('regions to place the app in, e.g. ["eu","us"]'),
      replicas: z.number().int().min(1).max(7).optional(),
      allowBreaking: z.boolean().optional(),
    };
    if (has('deploy')) {
      server.registerTool('plan_deploy', { description: 'What a deploy would change: placement per node, the next version, its bundle hash. Changes nothing.', inputSchema: bundleArgs, annotations: readOnly }, (args) =>
        guarded(async () => {
          const request = await bundleRequest(args.app, args.dir, args.files, { regions: args.regions, replicas: args.replicas ?? 3, allowBreaking: args.allowBreaking === true, plan: true });
          const answer = await client.call('POST', `${request.appPath}/deploy`, request.body);
          if (answer.status >= 300) return refused(`plan refused: ${problemText(answer)}`);
          return structured(answer.body);
        }),
      );
      server.registerTool(
        'deploy',
        {
          description: "Deploys a version: staged and prepared on every replica, then activated everywhere at one log index; aborted (nothing changes) if a replica cannot prepare it. With validateForSeconds, the active version is watched and rolled back on failure. Reports each replica's progress.",
          inputSchema: { ...bundleArgs, validateForSeconds: z.number().int().min(0).max(86_400).optional(), timeoutSeconds: z.number().int().min(1).max(3_600).optional() },
          annotations: { destructiveHint: false, idempotentHint: true, openWorldHint: false },
        },
        (args, extra) =>
          guarded(async () => {
            const request = await bundleRequest(args.app, args.dir, args.files, { regions: args.regions, replicas: args.replicas ?? 3, allowBreaking: args.allowBreaking === true, ...(args.validateForSeconds === undefined ? {} : { validateForMs: args.validateForSeconds * 1000 }) });
            const answer = await client.call('POST', `${request.appPath}/deploy`, request.body);
            if (answer.status >= 300) return refused(`deploy of ${request.name} refused: ${problemText(answer)}; nothing changed`);
            return follow(request.name, request.appPath, answer.body, (args.timeoutSeconds ?? followTimeoutMsDefault / 1000) * 1000, extra);
          }),
      );
      server.registerTool(
        'validate',
        { description: "Runs the app's declared checks against its active version on every replica (dry: nothing is written) and reports each replica's result and the active version's server-error rate.", inputSchema: appArg, annotations: { readOnlyHint: true, openWorldHint: false } },
        ({ app }) =>
          guarded(async () => {
            const status = await client.expect('GET', `/v1/apps/${encodeURIComponent(app)}`);
            const replicas = await Promise.all((await hostsOf(app)).map(async (node) => (await nodeRequest(app, 'POST', `/_checks/${encodeURIComponent(app)}`, {}, node)).body as Json));
            const served = ((status.members ?? []) as { node: string; served: { requests: number; errors: number } | null }[]).map((member) => ({ node: member.node, requests: member.served?.requests ?? 0, errors: member.served?.errors ?? 0 }));
            const requests = served.reduce((sum, member) => sum + member.requests, 0);
            const errors = served.reduce((sum, member) => sum + member.errors, 0);
            const failing = replicas.filter((replica) => ((replica.failed ?? []) as unknown[]).length > 0);
            const body = { app, activeVersion: status.activeVersion ?? null, passed: failing.length === 0, replicas, served, errorRate: requests === 0 ? 0 : errors / requests };
            const text = `${app} version ${String(status.activeVersion)}: checks ${failing.length === 0 ? 'pass' : 'fail'} on ${replicas.length - failing.length} of ${replicas.length} replicas; ${errors} server errors in ${requests} requests`;
            return failing.length === 0 ? structured(body, text) : { ...structured(body, text), isError: true };
          }),
      );
      server.registerTool('abort', { description: 'Aborts the rollout in progress: nothing changes anywhere.', inputSchema: appArg, annotations: { destructiveHint: false, openWorldHint: false } }, ({ app }) =>
        guarded(async () => structured(await client.expect('POST', `/v1/apps/${encodeURIComponent(app)}/abort`))),
      );
    }
    if (has('rollback')) {
      server.registerTool(
        'rollback',
        { description: "Rolls the app back to an earlier version's code (default: the one active before), staged and prepared everywhere like a deploy.", inputSchema: { ...appArg, to: z.number().int().min(1).optional(), timeoutSeconds: z.number().int().min(1).max(3_600).optional() }, annotations: { destructiveHint: true, openWorldHint: false } },
        ({ app, to, timeoutSeconds }, extra) =>
          guarded(async () => {
            const appPath = `/v1/apps/${encodeURIComponent(app)}`;
            const answer = await client.call('POST', `${appPath}/rollback`, to === undefined ? {} : { to });
            if (answer.status >= 300) return refused(`rollback of ${app} refused: ${problemText(answer)}; nothing changed`);
            return follow(app, appPath, { ...answer.body, rollout: true }, (timeoutSeconds ?? followTimeoutMsDefault / 1000) * 1000, extra);
          }),
      );
    }
    const dataArgs = { app: z.string().min(1), table: z.string().min(1).describe('the table (or resource) name') };
    if (has('read')) {
      server.registerTool('read_record', { description: 'One record by id, through a node that hosts the app.', inputSchema: { ...dataArgs, id: z.string().min(1) }, annotations: readOnly }, ({ app, table, id }) =>
        guarded(async () => structured(await nodeRequest(app, 'GET', `/${encodeURIComponent(table)}/${encodeURIComponent(id)}`))),
      );
      server.registerTool('query', { description: 'Records of a table matching a query in the REST query language (e.g. "price=gt=10&sort(-price)&limit(5)").', inputSchema: { ...dataArgs, query: z.string().max(4096).optional() }, annotations: readOnly }, ({ app, table, query }) =>
        guarded(async () => structured(await nodeRequest(app, 'GET', `/${encodeURIComponent(table)}/${query === undefined || query === '' ? '' : `?${query}`}`))),
      );
    }
    if (has('write')) {
      server.registerTool('write_record', { description: 'Creates or replaces a record (PUT), through a node that hosts the app.', inputSchema: { ...dataArgs, id: z.string().min(1), value: z.record(z.string(), z.unknown()) }, annotations: { destructiveHint: true, idempotentHint: true, openWorldHint: false } }, ({ app, table, id, value }) =>
        guarded(async () => structured(await nodeRequest(app, 'PUT', `/${encodeURIComponent(table)}/${encodeURIComponent(id)}`, value))),
      );
      server.registerTool('delete_record', { description: 'Deletes a record, through a node that hosts the app.', inputSchema: { ...dataArgs, id: z.string().min(1) }, annotations: { destructiveHint: true, idempotentHint: true, openWorldHint: false } }, ({ app, table, id }) =>
        guarded(async () => structured(await nodeRequest(app, 'DELETE', `/${encodeURIComponent(table)}/${encodeURIComponent(id)}`))),
      );
    }
  })();

  /** Follows a rollout to its end, with a progress notification per replica verdict and step; the
   *  result says how it ended (activated, aborted, rolled back) and why. */
  async function follow(app: string, appPath: string, accepted: Json, timeoutMs: number, extra: { _meta?: { progressToken?: string | number }; sendNotification: (notification: { method: 'notifications/progress'; params: { progressToken: string | number; progress: number; message?: string } }) => Promise<void> }): Promise<CallToolResult> {
    const progressToken = extra._meta?.progressToken;
    let progress = 0;
    const tell = (message: string): void => {
      progress += 1;
      if (progressToken !== undefined) void extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress, message } });
    };
    tell(`${app}: version ${String(accepted.version)} accepted at control index ${String(accepted.index)}`);
    const version = accepted.rollout === true ? Number(accepted.version) : undefined;
    const outcome = await followDeploy(client, { appPath }, Number(accepted.index), timeoutMs, (step) => tell(`${String(step.outcome)} ${String(step.detail)}`), (node, verdict) => tell(`${node}: ${String(verdict.phase)}${verdict.step === undefined ? '' : ` (${String(verdict.step)})`}${verdict.reason === undefined ? '' : `: ${String(verdict.reason)}`}`), version);
    const status = outcome.status;
    if (outcome.kind === 'converged') return structured({ outcome: 'activated', app, version: status.activeVersion ?? null, status }, `${app}: version ${String(status.activeVersion)} is active on every replica`);
    if (outcome.kind === 'refused') {
      const rolledBack = /^validation failed/.test(outcome.reason);
      return { ...structured({ outcome: rolledBack ? 'rolledBack' : 'aborted', app, version: outcome.version, reason: outcome.reason, status }, `${app}: version ${outcome.version} was ${rolledBack ? 'rolled back' : 'aborted; the active version keeps serving'}: ${outcome.reason}`), isError: true };
    }
    return { ...structured({ outcome: 'inProgress', app, version: version ?? null, status }, `${app} had not converged within ${timeoutMs / 1000} s; app_status follows it`), isError: true };
  }

  return { server, ready };
}

export async function runMcp(options: McpOptions): Promise<void> {
  const { server, ready } = createMcpServer(options);
  await ready;
  await server.connect(new StdioServerTransport());
}
