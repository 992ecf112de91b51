// The gate every request to a node passes: who is asking (the Authorization header against the
// credentials the control plane sent), and may it do this here (its grants and token scopes,
// for this app, table and the node's region). A refusal is answered 401 or 403 and kept for
// the audit trail (the node's next heartbeat carries it). Before the node has heard from the
// control plane it cannot tell anyone apart, so it refuses everything with 503.
import { Problem } from '../model/problem.js';
import { CredentialDirectory, type CredentialSnapshot, type Principal } from './credentials.js';
import { DeniedQueue } from './denied-queue.js';
import type { Action } from './permissions.js';

/** A request refused for want of a credential or a permission (on the control API or a node). */
export interface DeniedAttempt {
  readonly at: number;
  /** Where: 'control' (the control API) or 'node:<id>'. */
  readonly surface: string;
  /** The identity, or 'unauthenticated'. */
  readonly actor: string;
  readonly token?: string;
  /** Method and path, e.g. 'POST /v1/identities' (never a query string or body). */
  readonly request: string;
  readonly reason: string;
  /** The client's address. */
  readonly source: string;
}

/** Per role, per table: operations an app's config.yaml denies (false). */
export type TableRules = Readonly<Record<string, Readonly<Record<string, { readonly read?: boolean; readonly write?: boolean; readonly subscribe?: boolean }>>>>;

/** Refusals kept for the next heartbeat; beyond it they are counted, not kept. */
export const deniedQueuedMax = 2_000;

export interface GateRequest {
  readonly method: string;
  /** The path without its query string (a query may carry data that is not ours to keep). */
  readonly path: string;
  readonly authorization: string | undefined;
  readonly source: string;
}

export class RequestGate {
  private directory: CredentialDirectory | undefined;
  private readonly denied: DeniedQueue;

  /** `surface` names this node in refusals ('node:eu1'); `region` is where its data is served;
   *  `tableRules(app)` are the per-role table permissions of the app's active version. */
  constructor(
    readonly surface: string,
    readonly region: string,
    initial?: 'open',
    private readonly tableRules: (app: string) => TableRules | undefined = () => undefined,
  ) {
    this.denied = new DeniedQueue(surface, deniedQueuedMax);
    if (initial === 'open') this.directory = CredentialDirectory.openMode();
  }

  /** The control plane's word on what to authorize with. */
  update(credentials: { readonly mode: 'open' } | { readonly mode: 'secured'; readonly snapshot: CredentialSnapshot }): void {
    if (credentials.mode === 'open') {
      if (this.directory?.open !== true) this.directory = CredentialDirectory.openMode();
      return;
    }
    if (this.directory === undefined || this.directory.open || this.directory.revision !== credentials.snapshot.revision) this.directory = CredentialDirectory.of(credentials.snapshot);
  }

  /** The revision of the credentials held (undefined: none yet, or open). */
  revision(): number | undefined {
    return this.directory === undefined || this.directory.open ? undefined : this.directory.revision;
  }

  isOpen(): boolean {
    return this.directory?.open === true;
  }

  /** The caller, allowed to do `action` (or, when `actions` lists several, any one of them);
   *  throws a Problem (401, 403, or 503 before credentials arrived) and records the refusal. */
  async admit(request: GateRequest, ...actions: Action[]): Promise<Principal> {
    const directory = this.directory;
    if (directory === undefined) throw new Problem('unavailable', { detail: 'this node has not heard from the control plane yet: it cannot check credentials', headers: { 'Retry-After': '1' } });
    const now = Date.now();
    let principal: Principal;
    try {
      principal = await directory.authenticate(request.authorization, now);
    } catch (error) {
      if (error instanceof Problem) this.refused(request, 'unauthenticated', undefined, error.detail ?? error.kind);
      throw error;
    }
    if (principal.open || actions.length === 0) return principal;
    let reason: string | undefined;
    for (const action of actions) {
      reason = directory.refusal(principal, { ...action, regions: action.regions ?? [this.region] }, now, this.deniedTo(action));
      if (reason === undefined) return principal;
    }
    this.refused(request, principal.identity, principal.tokenId, reason ?? 'refused');
    throw new Problem('forbidden', { detail: `${principal.identity}: ${reason ?? 'refused'}` });
  }

  /** For a data operation on a table, whether the app's config denies it to a role. */
  private deniedTo(action: Action): ((role: string) => boolean) | undefined {
    if (action.app === undefined || action.table === undefined || (action.op !== 'read' && action.op !== 'write' && action.op !== 'subscribe')) return undefined;
    const rules = this.tableRules(action.app);
    if (rules === undefined) return undefined;
    const { table, op } = action;
    return (role) => rules[role]?.[table]?.[op] === false;
  }

  /** Refusals since the last call, oldest first (at most `max`). */
  takeDenied(max: number): DeniedAttempt[] {
    return this.denied.take(max);
  }

  /** Puts refusals back (the heartbeat that carried them failed). */
  giveBack(attempts: readonly DeniedAttempt[]): void {
    this.denied.giveBack(attempts);
  }

  /** A refusal seen elsewhere on this node (a gRPC call from a peer that is not who it claims). */
  recordRefusal(request: GateRequest, actor: string, reason: string): void {
    this.refused(request, actor, undefined, reason);
  }

  private refused(request: GateRequest, actor: string, token: string | undefined, reason: string): void {
    this.denied.push({ at: Date.now(), surface: this.surface, actor, ...(token === undefined ? {} : { token }), request: `${request.method} ${request.path}`, reason, source: request.source });
  }
}
