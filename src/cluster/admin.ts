// /_admin endpoints of a cluster node, POSTs to an app group's leader: membership (add a
// learner, promote it, remove a member), leader transfer, and a rollout's stage, activate and
// abort - the control plane's reconciler calls them - and, only on nodes started with
// --fault-injection, network partitions for tests. (Unauthenticated until issue 10.)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bundleBytesMax, bundleFileNames, bundleHash } from '../app/bundle.js';
import { readBody } from '../http/body.js';
import type { Bundle } from '../model/app-entries.js';
import { Problem } from '../model/problem.js';
import type { ConfChange } from '../raft/index.js';
import type { NodeHost } from './node-host.js';

/** Admin request bodies are small JSON objects, or a deploy's bundle. */
const adminBodyBytesMax = bundleBytesMax * 2;
/** A learner is promoted only when at most this many entries behind the leader's commit. */
export const promoteLagEntriesMax = 100;
const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const addressPattern = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = await readBody(req, adminBodyBytesMax);
  try {
    const value: unknown = JSON.parse(raw.toString('utf8') || '{}');
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch {
    throw new Problem('invalid', { detail: 'the body must be a JSON object' });
  }
}

function requireNodeId(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== 'string' || !nodeIdPattern.test(value)) throw new Problem('invalid', { errors: [{ field, message: 'must be a node id (letters, digits, - and _)' }] });
  return value;
}

function requireIdList(body: Record<string, unknown>, field: string): string[] {
  const value = body[field] ?? [];
  if (!Array.isArray(value) || !value.every((id) => typeof id === 'string' && nodeIdPattern.test(id))) {
    throw new Problem('invalid', { errors: [{ field, message: 'must be a list of node ids' }] });
  }
  return value as string[];
}

/** A bundle sent by the control plane: known file names, string contents; the hash is ours. */
export function requireBundle(body: Record<string, unknown>, field: string): Bundle {
  const value = body[field];
  const files = value !== null && typeof value === 'object' ? (value as Record<string, unknown>).files : undefined;
  if (files === null || typeof files !== 'object' || Array.isArray(files)) throw new Problem('invalid', { errors: [{ field: `${field}.files`, message: 'must be an object of file name to contents' }] });
  const checked: Record<string, string> = {};
  let bytes = 0;
  for (const [name, contents] of Object.entries(files as Record<string, unknown>)) {
    if (!(bundleFileNames as readonly string[]).includes(name)) throw new Problem('invalid', { errors: [{ field: `${field}.files.${name}`, message: `is not a bundle file (${bundleFileNames.join(', ')})` }] });
    if (typeof contents !== 'string') throw new Problem('invalid', { errors: [{ field: `${field}.files.${name}`, message: 'must be a string' }] });
    bytes += Buffer.byteLength(contents);
    checked[name] = contents;
  }
  if (bytes > bundleBytesMax) throw new Problem('too-large', { detail: `the bundle holds ${bytes} bytes; at most ${bundleBytesMax}` });
  if (checked['schema.graphql'] === undefined) throw new Problem('invalid', { errors: [{ field: `${field}.files`, message: 'must hold schema.graphql' }] });
  return { hash: bundleHash(checked), files: checked };
}

function send(res: ServerResponse, status: number, body: unknown): number {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  return status;
}

export async function handleAdmin(node: NodeHost, faultInjection: boolean, req: IncomingMessage, res: ServerResponse, path: string): Promise<number> {
  const parts = path.split('/').filter((part) => part !== ''); // ['_admin', ...]
  if (req.method !== 'POST') throw new Problem('method-not-allowed', { detail: 'admin operations are POST requests', headers: { Allow: 'POST' } });
  if (parts[1] === 'faults') {
    if (!faultInjection) throw new Problem('not-found', { detail: 'fault injection is off (start the node with --fault-injection)' });
    const body = await jsonBody(req);
    node.transport.setPartition({ dropTo: requireIdList(body, 'dropTo'), dropFrom: requireIdList(body, 'dropFrom') });
    return send(res, 200, { ok: true });
  }
  const appName = parts[1];
  const operation = parts[2];
  const app = appName === undefined ? undefined : node.apps.get(appName);
  if (app === undefined) throw new Problem('not-found', { detail: `this node hosts no app '${appName ?? ''}'` });
  const group = app.group;
  const body = await jsonBody(req);
  const notLeader = (): never => {
    throw new Problem('unavailable', { detail: `this node is not the leader of ${app.record.name}; the leader is ${group.leader() || 'unknown'}`, headers: { 'Retry-After': '1' } });
  };
  const propose = (change: ConfChange): void => {
    if (!group.isLeader()) notLeader();
    try {
      group.proposeConfChange(change);
    } catch (error) {
      throw new Problem('conflict', { detail: `membership change refused: ${error instanceof Error ? error.message : String(error)}` });
    }
  };
  switch (operation) {
    case 'learners': {
      const id = requireNodeId(body, 'id');
      const address = body.address;
      if (typeof address !== 'string' || !addressPattern.test(address)) throw new Problem('invalid', { errors: [{ field: 'address', message: 'must be host:port of the node gRPC server' }] });
      propose({ changes: [{ type: 'addLearner', nodeId: id }], transition: 'auto', context: new Uint8Array(Buffer.from(JSON.stringify({ [id]: address }))) });
      return send(res, 202, { proposed: 'addLearner', id });
    }
    case 'promote': {
      const id = requireNodeId(body, 'id');
      if (!group.isLeader()) notLeader();
      const status = group.status();
      const progress = status.progress?.get(id);
      if (progress === undefined || !progress.isLearner) throw new Problem('conflict', { detail: `${id} is not a learner of ${app.record.name}` });
      const lag = status.hardState.commit - progress.match;
      if (lag > promoteLagEntriesMax) throw new Problem('conflict', { detail: `${id} is ${lag} entries behind; promote it once it caught up` });
      propose({ changes: [{ type: 'addNode', nodeId: id }], transition: 'auto' });
      return send(res, 202, { proposed: 'addNode', id });
    }
    case 'remove': {
      const id = requireNodeId(body, 'id');
      propose({ changes: [{ type: 'removeNode', nodeId: id }], transition: 'auto' });
      return send(res, 202, { proposed: 'removeNode', id });
    }
    case 'stage': {
      if (!group.isLeader()) notLeader();
      const bundle = requireBundle(body, 'bundle');
      const staged = await app.host.stage(bundle, { allowBreaking: body.allowBreaking === true, skipChecks: body.skipChecks === true });
      return send(res, 200, { hash: bundle.hash, ...staged });
    }
    case 'activate':
    case 'abort': {
      if (!group.isLeader()) notLeader();
      const version = body.version;
      if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) throw new Problem('invalid', { errors: [{ field: 'version', message: 'must be a staged version number' }] });
      let proposal;
      if (operation === 'activate') {
        const epoch = body.epoch;
        if (typeof epoch !== 'number' || !Number.isInteger(epoch) || epoch < 0) throw new Problem('invalid', { errors: [{ field: 'epoch', message: 'must be the activation epoch the switch was decided at' }] });
        proposal = await app.host.activateStaged(version, epoch);
      } else {
        proposal = await app.host.abortStaged(version);
      }
      if (!proposal.result.ok) throw new Problem('conflict', { detail: `${operation} of version ${version} refused: ${'detail' in proposal.result ? String(proposal.result.detail) : JSON.stringify(proposal.result)}` });
      return send(res, 200, { [operation === 'activate' ? 'activated' : 'aborted']: version, index: proposal.index });
    }
    case 'transfer': {
      const to = requireNodeId(body, 'to');
      if (!group.isLeader()) notLeader();
      group.transferLeadership(to);
      return send(res, 202, { transferring: to });
    }
    default:
      throw new Problem('not-found', { detail: `unknown admin operation '${operation ?? ''}'` });
  }
}
