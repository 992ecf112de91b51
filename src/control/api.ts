// The control plane's HTTP API (JSON; errors as application/problem+json), which clusterctl
// and nodes use. Any member answers: a follower passes the request to the leader, so every
// answer reflects the leader's state, and reads are linearizable (a ReadIndex round before the
// durable state is read). The JSON shapes are documented in the README ("clusterctl JSON").
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { requireBundle } from '../cluster/admin.js';
import { deniedPerHeartbeatMax, heartbeatPath, type HeartbeatRequest, type NodeIdentity } from '../cluster/control-protocol.js';
import { readBody } from '../http/body.js';
import { asProblem, renderProblem } from '../http/problem.js';
import { bundleBytesMax } from '../app/bundle.js';
import { ConfigError, parseConfig, type AppConfig } from '../app/config.js';
import { Problem } from '../model/problem.js';
import type { Logger } from '../observability/logger.js';
import { assignmentsFor, directoryOf } from './assignments.js';
import { auditListing, auditVerify, checkpointOf } from './audit-view.js';
import type { Principal } from '../security/credentials.js';
import type { Action } from '../security/permissions.js';
import type { DeniedAttempt } from './commands.js';
import type { Caller, ControlPlane } from './control-plane.js';
import { identityRoute, type Access } from './identity-api.js';
import { diffSchemas } from '../schema/diff.js';
import { parseSchema } from '../schema/parse.js';
import { appStatus, appSummary, nodeSummary, planChanges } from './views.js';
import { place } from './placement.js';
import type { FailureDomain, PlacementSpec } from './placement-types.js';
import { appNamePattern, defaultMaxErrorRate } from './state.js';

/** The longest validation window a deploy may ask for. */
const validateForMsMax = 24 * 3_600_000;

const bodyBytesMax = bundleBytesMax * 2;
const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const regionPattern = /^[a-z0-9][a-z0-9-]{0,31}$/;
const urlPattern = /^https?:\/\/[A-Za-z0-9.\-[\]:]+(:\d{1,5})?$/;
const addressPattern = /^[A-Za-z0-9.-]+:\d{1,5}$/;
export const replicasMax = 7;
/** A request passed to the leader waits this long for it. */
const forwardTimeoutMs = 70_000;

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = await readBody(req, bodyBytesMax);
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8') || '{}');
  } catch {
    throw new Problem('invalid', { detail: 'the body is not JSON' });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Problem('invalid', { detail: 'the body must be a JSON object' });
  return value as Record<string, unknown>;
}

/** The placement spec of a deploy request, or a problem naming every bad field. */
export function parseSpec(body: Record<string, unknown>): PlacementSpec {
  const errors: { field: string; message: string }[] = [];
  const regions = body.regions;
  let list: string[] = [];
  if (!Array.isArray(regions) || regions.length === 0 || !regions.every((r) => typeof r === 'string' && regionPattern.test(r))) {
    errors.push({ field: 'regions', message: 'must be a non-empty list of region names (lower-case letters, digits, -)' });
  } else {
    list = [...new Set(regions as string[])].sort();
    if (list.length !== regions.length) errors.push({ field: 'regions', message: 'names a region twice' });
  }
  const replicas = body.replicas ?? 3;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 1 || replicas > replicasMax) errors.push({ field: 'replicas', message: `must be an integer from 1 to ${replicasMax}` });
  const survive = body.survive;
  if (survive !== undefined && survive !== null && survive !== 'zone' && survive !== 'region') errors.push({ field: 'survive', message: "must be 'zone' or 'region'" });
  if (errors.length > 0) throw new Problem('invalid', { errors });
  return { regions: list, replicas: replicas as number, survive: (survive ?? undefined) as FailureDomain | undefined };
}

function parseIdentity(value: unknown): NodeIdentity {
  const node = value as Record<string, unknown> | null;
  const errors: { field: string; message: string }[] = [];
  if (node === null || typeof node !== 'object') throw new Problem('invalid', { errors: [{ field: 'node', message: 'must be an object' }] });
  if (typeof node.id !== 'string' || !nodeIdPattern.test(node.id)) errors.push({ field: 'node.id', message: 'must be a node id' });
  if (typeof node.region !== 'string' || !regionPattern.test(node.region)) errors.push({ field: 'node.region', message: 'must be a region name' });
  if (node.zone !== undefined && node.zone !== null && (typeof node.zone !== 'string' || !regionPattern.test(node.zone))) errors.push({ field: 'node.zone', message: 'must be a zone name' });
  if (typeof node.httpUrl !== 'string' || !urlPattern.test(node.httpUrl)) errors.push({ field: 'node.httpUrl', message: 'must be the base URL of the node' });
  if (typeof node.grpcAddress !== 'string' || !addressPattern.test(node.grpcAddress)) errors.push({ field: 'node.grpcAddress', message: 'must be host:port' });
  if (errors.length > 0) throw new Problem('invalid', { errors });
  return { id: node.id as string, region: node.region as string, zone: (node.zone ?? undefined) as string | undefined, httpUrl: node.httpUrl as string, grpcAddress: node.grpcAddress as string };
}

/** What a bundle's schema changes against the active version's: additive and breaking changes,
 *  as a replica's prepare would judge them; or why the new schema does not parse. */
function schemaChanges(active: string | undefined, next: string | undefined): { additive: string[]; breaking: string[] } | { error: string } {
  try {
    const nextSchema = parseSchema(next ?? '');
    if (active === undefined) return { additive: [...nextSchema.tables.keys()].map((table) => `table ${table} is new`), breaking: [] };
    const diff = diffSchemas(parseSchema(active), nextSchema);
    return { additive: diff.additive.map((change) => change.description), breaking: diff.breaking.map((change) => change.description) };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/** The denied attempts a node's heartbeat reports, checked field by field and bounded. */
function deniedAttemptsOf(value: unknown, node: string): DeniedAttempt[] {
  if (!Array.isArray(value)) return [];
  const text = (field: unknown): string => (typeof field === 'string' ? field : '');
  return value.slice(0, deniedPerHeartbeatMax).flatMap((raw: unknown) => {
    const attempt = raw as Record<string, unknown> | null;
    if (attempt === null || typeof attempt !== 'object' || typeof attempt.at !== 'number') return [];
    return [{ at: attempt.at, surface: `node:${node}`, actor: text(attempt.actor) || 'unauthenticated', ...(typeof attempt.token === 'string' ? { token: attempt.token } : {}), request: text(attempt.request), reason: text(attempt.reason), source: text(attempt.source) }];
  });
}

export interface ControlApiOptions {
  readonly control: ControlPlane;
  /** Serves MCP's streamable HTTP transport at /mcp (the caller authenticated first). */
  readonly mcp?: (req: IncomingMessage, res: ServerResponse, open: boolean) => Promise<void>;
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
}

export class ControlApi {
  private readonly server: Server;

  constructor(private readonly options: ControlApiOptions) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => resolve());
    });
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { control } = this.options;
    try {
      const url = new URL(req.url ?? '/', 'http://control');
      // A member's own health is its own to answer (a follower has no leader to ask); it is
      // authenticated like everything else once the log is secured.
      if (url.pathname === '/_health') {
        if (control.machine.state.auth.secured) await this.access(req, url);
        return json(res, 200, { member: control.options.memberId, leader: control.group.leader() || null, isLeader: control.isLeader(), secured: control.machine.state.auth.secured });
      }
      // A member serves its MCP sessions itself (they live in its memory); their tools call the
      // API, which passes to the leader like any request.
      if (url.pathname === '/mcp' && this.options.mcp !== undefined) {
        if (control.machine.state.auth.secured || control.bootstrapping()) await this.access(req, url);
        return await this.options.mcp(req, res, !control.machine.state.auth.secured && !control.bootstrapping());
      }
      if (!control.isLeader()) return await this.forward(req, res);
      res.setHeader('X-Lockstep-Control-Leader', control.options.memberId);
      if (control.bootstrapping()) throw new Problem('unavailable', { detail: 'the control plane is registering its credentials', headers: { 'Retry-After': '1' } });
      const access = await this.access(req, url);
      await this.route(req, res, url, access);
    } catch (error) {
      const problem = asProblem(error);
      if (problem.kind === 'internal') this.options.logger.error({ err: error, url: req.url }, 'control API request failed');
      const rendered = renderProblem(problem);
      if (!res.headersSent) res.writeHead(rendered.status, rendered.headers).end(rendered.body);
      else res.end();
    }
  }

  /** Who is asking, checked against the credentials; a refusal is recorded in the audit trail.
   *  In open mode everyone is let through as 'operator'. */
  private async access(req: IncomingMessage, url: URL): Promise<Access> {
    const { control } = this.options;
    const directory = control.credentials();
    const request = `${req.method ?? 'GET'} ${url.pathname}`;
    const source = req.socket.remoteAddress ?? 'unknown';
    let principal: Principal;
    try {
      principal = await directory.authenticate(req.headers.authorization, Date.now());
    } catch (error) {
      if (error instanceof Problem) control.recordDenied({ at: Date.now(), surface: 'control', actor: 'unauthenticated', request, reason: error.detail ?? error.kind, source });
      throw error;
    }
    const caller: Caller = principal.open ? { actor: 'operator' } : { actor: principal.identity, ...(principal.tokenId === undefined ? {} : { token: principal.tokenId }), caveats: principal.scopes.slice(principal.tokenId === undefined ? 0 : 1) };
    const deny = (reason: string): DeniedAttempt => ({ at: Date.now(), surface: 'control', actor: principal.identity, ...(principal.tokenId === undefined ? {} : { token: principal.tokenId }), request, reason, source });
    return {
      principal,
      caller,
      can: (action: Action) => directory.refusal(principal, action, Date.now()) === undefined,
      require: (action: Action) => {
        const reason = directory.refusal(principal, action, Date.now());
        if (reason === undefined) return;
        control.recordDenied(deny(reason));
        throw new Problem('forbidden', { detail: `${principal.identity}: ${reason}` });
      },
    };
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL, access: Access): Promise<void> {
    const { control } = this.options;
    const parts = url.pathname.split('/').filter((part) => part !== '').map(decodeURIComponent);
    const method = req.method ?? 'GET';
    const only = (allowed: string): void => {
      if (method !== allowed) throw new Problem('method-not-allowed', { detail: `${url.pathname} takes ${allowed}`, headers: { Allow: allowed } });
    };
    if (url.pathname === heartbeatPath) {
      access.require({ op: 'cluster' });
      only('POST');
      return json(res, 200, await this.heartbeat(await jsonBody(req)));
    }
    if (parts[0] === '_topology' && parts.length === 1) {
      only('GET');
      await control.readPoint();
      return json(res, 200, this.topology());
    }
    if (parts[0] !== 'v1') throw new Problem('not-found', { detail: `no control-plane endpoint ${url.pathname}` });
    const identityAnswer = await identityRoute(control, access, method, parts, () => jsonBody(req));
    if (identityAnswer !== undefined) return json(res, identityAnswer.status, identityAnswer.body);
    if (parts[1] === 'audit') {
      // A caller without `audit` may read the records of its own actions and of the apps it may
      // read or deploy, nothing else; everything else here needs `audit`, authorized before the
      // method is looked at, so an attempt to write the trail (there is no way to) is refused as such.
      const asked = url.searchParams.get('app');
      // Asking for an app it may not read is asking for what it may not see: refused, not emptied.
      const ownView = parts.length === 2 && method === 'GET' && !access.can({ op: 'audit' }) && (asked === null || access.can({ op: 'read', app: asked }) || access.can({ op: 'deploy', app: asked }));
      if (!ownView) access.require({ op: 'audit' });
      only('GET');
      await control.readPoint();
      if (ownView) {
        const me = access.principal.identity;
        const apps = new Map<string, boolean>();
        const mayRead = (app: string): boolean => apps.get(app) ?? (apps.set(app, access.can({ op: 'read', app }) || access.can({ op: 'deploy', app })).get(app) as boolean);
        return json(res, 200, auditListing(control.machine, url.searchParams, (record) => record.actor === me || (record.target.startsWith('app:') && mayRead(record.target.slice(4)))));
      }
      if (parts.length === 2) return json(res, 200, auditListing(control.machine, url.searchParams));
      if (parts.length === 3 && parts[2] === 'checkpoint') return json(res, 200, control.signedAuditHead());
      if (parts.length === 3 && parts[2] === 'verify') return json(res, 200, auditVerify(control.machine, checkpointOf(url.searchParams)));
      throw new Problem('not-found', { detail: `no control-plane endpoint ${url.pathname} (audit, audit/verify, audit/checkpoint)` });
    }
    if (parts[1] === 'nodes' && parts.length === 2) {
      only('GET');
      await control.readPoint();
      const view = control.machine.view();
      return json(res, 200, { revision: view.revision, nodes: view.nodes.map((node) => nodeSummary(node, view.apps, control.reports)) });
    }
    if (parts[1] === 'nodes' && parts.length === 4 && (parts[3] === 'drain' || parts[3] === 'undrain')) {
      only('POST');
      const id = parts[2] as string;
      const region = control.machine.state.nodes.get(id)?.region;
      access.require({ op: 'operate', ...(region === undefined ? {} : { regions: [region] }) });
      const outcome = await control.propose({ op: 'node.drain', id, drain: parts[3] === 'drain' ? 'draining' : 'none' }, access.caller);
      if (!outcome.result.ok) throw new Problem(outcome.result.denied === true ? 'forbidden' : 'not-found', { detail: outcome.result.reason });
      return json(res, 202, { node: id, drain: parts[3] === 'drain' ? 'draining' : 'none', index: outcome.index });
    }
    if (parts[1] === 'apps' && parts.length === 2) {
      only('GET');
      await control.readPoint();
      const view = control.machine.view();
      // Each caller sees the apps it may read.
      return json(res, 200, { revision: view.revision, apps: view.apps.filter((app) => access.can({ op: 'read', app: app.name }) || access.can({ op: 'deploy', app: app.name })).map((app) => appSummary(app)) });
    }
    if (parts[1] === 'apps' && parts.length === 3) {
      only('GET');
      if (!access.can({ op: 'deploy', app: parts[2] as string })) access.require({ op: 'read', app: parts[2] as string });
      await control.readPoint();
      const app = control.machine.view().apps.find((candidate) => candidate.name === parts[2]);
      if (app === undefined) throw new Problem('not-found', { detail: `no app '${parts[2] ?? ''}'; clusterctl apps lists them` });
      return json(res, 200, appStatus(app, control.reports, (node) => control.machine.state.nodes.get(node)));
    }
    if (parts[1] === 'apps' && parts.length === 4 && parts[3] === 'schema') {
      only('GET');
      if (!access.can({ op: 'deploy', app: parts[2] as string })) access.require({ op: 'read', app: parts[2] as string });
      await control.readPoint();
      const app = control.machine.state.apps.get(parts[2] as string);
      const version = app?.versions.find((candidate) => candidate.version === app.activeVersion) ?? app?.versions[app.versions.length - 1];
      const files = version === undefined ? undefined : control.machine.state.bundles.get(version.hash)?.files;
      if (app === undefined || version === undefined || files === undefined) throw new Problem('not-found', { detail: `no app '${parts[2] ?? ''}' with a kept version` });
      return json(res, 200, { app: app.name, version: version.version, active: version.version === app.activeVersion, hash: version.hash, schema: files['schema.graphql'] ?? '', config: files['config.yaml'] ?? '' });
    }
    if (parts[1] === 'apps' && parts.length === 4 && parts[3] === 'rollback') {
      only('POST');
      access.require({ op: 'rollback', app: parts[2] as string, regions: control.machine.state.apps.get(parts[2] as string)?.spec.regions ?? [] });
      return this.rollback(parts[2] as string, await jsonBody(req), res, access.caller);
    }
    if (parts[1] === 'apps' && parts.length === 4 && parts[3] === 'abort') {
      only('POST');
      access.require({ op: 'deploy', app: parts[2] as string, regions: control.machine.state.apps.get(parts[2] as string)?.spec.regions ?? [] });
      const outcome = await control.propose({ op: 'app.abortRollout', name: parts[2] as string }, access.caller);
      if (!outcome.result.ok) throw new Problem(outcome.result.denied === true ? 'forbidden' : control.machine.state.apps.has(parts[2] as string) ? 'conflict' : 'not-found', { detail: outcome.result.reason });
      return json(res, 202, { app: parts[2], abortRequested: true, index: outcome.index });
    }
    if (parts[1] === 'apps' && parts.length === 4 && parts[3] === 'deploy') {
      only('POST');
      return this.deploy(parts[2] as string, await jsonBody(req), res, access);
    }
    throw new Problem('not-found', { detail: `no control-plane endpoint ${url.pathname}` });
  }

  private async deploy(name: string, body: Record<string, unknown>, res: ServerResponse, access: Access): Promise<void> {
    const { control } = this.options;
    if (!appNamePattern.test(name)) throw new Problem('invalid', { errors: [{ field: 'name', message: "must start with a letter and hold only letters, digits, '-' and '_' (at most 63)" }] });
    const spec = parseSpec(body);
    access.require({ op: 'deploy', app: name, regions: spec.regions });
    const bundle = requireBundle(body, 'bundle');
    const allowBreaking = body.allowBreaking === true;
    const { state } = control.machine;
    const existing = state.apps.get(name);
    const latest = existing?.versions[existing.versions.length - 1];
    const codeChanges = latest?.hash !== bundle.hash;
    const planId = `${state.revision}-${bundle.hash.slice(0, 12)}`;
    if (body.plan === true) {
      const result = place(spec, state.candidates(name), existing?.target);
      if (!result.ok) throw new Problem('conflict', { type: 'placement-refused', detail: result.reason });
      return json(res, 200, {
        app: name,
        planId,
        schema: schemaChanges(existing === undefined ? undefined : control.machine.state.bundles.get(existing.versions.find((v) => v.version === existing.activeVersion)?.hash ?? '')?.files['schema.graphql'], bundle.files['schema.graphql']),
        created: existing === undefined,
        version: { current: existing?.desiredVersion ?? 0, next: codeChanges ? (latest?.version ?? 0) + 1 : (latest?.version ?? 0), hash: bundle.hash, changes: codeChanges },
        changes: planChanges(existing?.target, result.placement, state),
        target: result.placement,
        survival: result.survival,
      });
    }
    let expectRevision: number | undefined;
    if (body.planId !== undefined) {
      const match = typeof body.planId === 'string' ? /^(\d+)-([0-9a-f]{12})$/.exec(body.planId) : null;
      if (match === null) throw new Problem('invalid', { errors: [{ field: 'planId', message: 'must be a plan id printed by deploy --plan' }] });
      if (match[2] !== bundle.hash.slice(0, 12)) throw new Problem('precondition-failed', { detail: 'the plan was made for other app files: plan again' });
      expectRevision = Number(match[1]);
    }
    const validateForMs = body.validateForMs ?? 0;
    if (typeof validateForMs !== 'number' || !Number.isInteger(validateForMs) || validateForMs < 0 || validateForMs > validateForMsMax) {
      throw new Problem('invalid', { errors: [{ field: 'validateForMs', message: `must be milliseconds from 0 to ${validateForMsMax}` }] });
    }
    let config: AppConfig;
    try {
      config = parseConfig(bundle.files['config.yaml']);
    } catch (error) {
      // Refused here, before anything is proposed, rather than failing on every replica.
      if (error instanceof ConfigError) throw new Problem('invalid', { errors: [{ field: 'bundle.config.yaml', message: error.message }] });
      throw error;
    }
    // The deploy's flag wins over the app's config.yaml, which wins over the default.
    const maxErrorRate = body.maxErrorRate ?? config.validation.maxErrorRate ?? defaultMaxErrorRate;
    if (typeof maxErrorRate !== 'number' || !(maxErrorRate >= 0 && maxErrorRate < 1)) throw new Problem('invalid', { errors: [{ field: 'maxErrorRate', message: 'must be a fraction from 0 up to (not including) 1' }] });
    const outcome = await control.propose({ op: 'app.deploy', name, spec, bundle, allowBreaking, expectRevision, validateForMs, maxErrorRate }, access.caller);
    if (!outcome.result.ok && outcome.result.denied === true) throw new Problem('forbidden', { detail: outcome.result.reason });
    if (!outcome.result.ok) {
      const stale = outcome.result.reason.startsWith('the plan was made');
      const racing = outcome.result.reason.includes('is being rolled out');
      throw new Problem(stale ? 'precondition-failed' : 'conflict', { type: stale ? 'plan-stale' : racing ? 'rollout-in-progress' : 'placement-refused', detail: outcome.result.reason });
    }
    const app = control.machine.state.apps.get(name);
    // A new version starts a rollout (stage, prepare everywhere, activate); a placement change alone does not.
    const rollout = app?.rollout?.startedIndex === outcome.index;
    return json(res, 202, { app: name, version: outcome.result.version, rollout, index: outcome.index, revision: outcome.result.revision, target: app?.target, survival: app?.survival });
  }

  /** Rolls back to `to`, or by default to the version that was active before the current one. */
  private async rollback(name: string, body: Record<string, unknown>, res: ServerResponse, caller: Caller): Promise<void> {
    const { control } = this.options;
    const app = control.machine.state.apps.get(name);
    if (app === undefined) throw new Problem('not-found', { detail: `no app '${name}'; clusterctl apps lists them` });
    let to = body.to;
    if (to === undefined) {
      const activated = app.history.filter((rollout) => rollout.outcome === 'activated' && rollout.version !== app.activeVersion);
      to = activated[activated.length - 1]?.version;
      if (to === undefined) throw new Problem('conflict', { detail: `${name} has no earlier activated version to roll back to` });
    }
    if (typeof to !== 'number' || !Number.isInteger(to) || to < 1) throw new Problem('invalid', { errors: [{ field: 'to', message: 'must be a version number (clusterctl history lists them)' }] });
    const outcome = await control.propose({ op: 'app.rollback', name, to }, caller);
    if (!outcome.result.ok && outcome.result.denied === true) throw new Problem('forbidden', { detail: outcome.result.reason });
    if (!outcome.result.ok) throw new Problem('conflict', { type: outcome.result.reason.includes('is being rolled out') ? 'rollout-in-progress' : 'rollback-refused', detail: outcome.result.reason });
    return json(res, 202, { app: name, version: outcome.result.version, rollbackTo: to, rollout: true, index: outcome.index });
  }

  private async heartbeat(body: Record<string, unknown>): Promise<unknown> {
    const { control } = this.options;
    const node = parseIdentity(body.node);
    if (!Array.isArray(body.groups)) throw new Problem('invalid', { errors: [{ field: 'groups', message: 'must be a list of group reports' }] });
    const request: HeartbeatRequest = { node, groups: body.groups as HeartbeatRequest['groups'] };
    control.reports.record(request, Date.now());
    for (const attempt of deniedAttemptsOf(body.denied, node.id)) control.recordDenied(attempt);
    // A replica decided on a staged version: the switch is decided on it now, not at the next pass.
    if (request.groups.some((group) => Array.isArray(group.staged) && group.staged.some((verdict) => verdict.phase !== 'preparing'))) control.reconciler.soon();
    const known = control.machine.state.nodes.get(node.id);
    if (known === undefined || known.httpUrl !== node.httpUrl || known.grpcAddress !== node.grpcAddress || (known.zone ?? undefined) !== node.zone || known.region !== node.region) {
      const outcome = await control.propose({ op: 'node.register', node }, `node:${node.id}`);
      if (!outcome.result.ok) throw new Problem('conflict', { detail: outcome.result.reason });
    } else if (known.liveness !== 'up') {
      await control.propose({ op: 'node.liveness', id: node.id, liveness: 'up' }, `node:${node.id}`);
    }
    const answer = assignmentsFor(node.id, control.machine.state, control.reports, control.liveness.timing.heartbeatIntervalMs);
    const { auth } = control.machine.state;
    const held = body.credentialsRevision;
    if (!auth.secured) return { ...answer, credentials: { mode: 'open' } };
    return held === auth.revision ? answer : { ...answer, credentials: { mode: 'secured', snapshot: auth.snapshot() } };
  }

  private topology(): unknown {
    const { control } = this.options;
    return {
      control: { members: Object.fromEntries(control.machine.state.members), leader: control.group.leader() || null },
      ...directoryOf(control.machine.state, control.reports),
    };
  }

  /** Passes the request to the leader and its answer back. */
  private async forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { control } = this.options;
    const leaderUrl = control.leaderUrl();
    if (leaderUrl === undefined) {
      throw new Problem('unavailable', { detail: `control-plane member ${control.options.memberId} knows no leader yet`, headers: { 'Retry-After': '1' } });
    }
    const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readBody(req, bodyBytesMax);
    const answer = await request(`${leaderUrl}${req.url ?? '/'}`, {
      method: (req.method ?? 'GET') as 'GET',
      headers: {
        'content-type': req.headers['content-type'] ?? 'application/json',
        'x-lockstep-forwarded-by': control.options.memberId,
        // The leader authenticates the caller; the credential passes through untouched.
        ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }),
      },
      ...(body === undefined ? {} : { body }),
      headersTimeout: forwardTimeoutMs,
      bodyTimeout: forwardTimeoutMs,
    }).catch((error: unknown) => {
      throw new Problem('unavailable', { detail: `the control-plane leader at ${leaderUrl} did not answer: ${error instanceof Error ? error.message : String(error)}`, headers: { 'Retry-After': '1' } });
    });
    const text = await answer.body.text();
    const headers: Record<string, string> = { 'X-Lockstep-Forwarded-By': control.options.memberId };
    for (const name of ['content-type', 'allow', 'retry-after', 'x-lockstep-control-leader', 'www-authenticate']) {
      const value = answer.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    res.writeHead(answer.statusCode, headers).end(text);
  }
}

