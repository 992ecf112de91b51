// The control plane's state machine on the group host: ControlState (the deterministic rules)
// over ControlStore (LMDB). `apply` runs inside the group's write transaction and writes back
// exactly the records the entry changed, with the applied index; a restart or an installed
// snapshot reloads the memory from the store. Readers (the HTTP API) read the store, which
// holds only durable state.
import type { AppliedEntry, ReplicatedStateMachine } from '../group/types.js';
import type { Bundle } from '../model/app-entries.js';
import type { LogIndex, NodeId } from '../model/ids.js';
import type { ControlStore } from '../storage/control-store.js';
import { auditRecordsOf, emptyHead, type ChainHead } from './audit.js';
import type { GrantRecord, IdentityRecord, RoleRecord, TokenRecord } from './auth-state.js';
import type { ControlEntry } from './commands.js';
import { ControlState, emptyChanges, type AppRecord, type ApplyResult, type NodeRecord } from './state.js';

/** A read of the durable control state. */
export interface ControlView {
  readonly revision: number;
  readonly appliedIndex: LogIndex;
  readonly nodes: readonly NodeRecord[];
  readonly apps: readonly AppRecord[];
  readonly members: ReadonlyMap<NodeId, string>;
}

export class ControlMachine implements ReplicatedStateMachine<ControlEntry, ApplyResult> {
  /** The state as of lastAppliedIndex() (possibly ahead of what is durable). */
  state: ControlState;
  private pending: LogIndex;
  private durable: LogIndex;
  /** The audit chain's head as of lastAppliedIndex(). */
  private auditHead: ChainHead;
  private readonly listeners: ((results: readonly AppliedEntry<ApplyResult>[]) => void)[] = [];

  constructor(private readonly store: ControlStore) {
    this.state = this.load();
    this.pending = store.metaNumber('applied');
    this.durable = this.pending;
    this.auditHead = store.auditHead() ?? emptyHead;
  }

  lastAppliedIndex(): LogIndex {
    return this.pending;
  }

  appliedIndex(): LogIndex {
    return this.durable;
  }

  apply(index: LogIndex, entry: ControlEntry | undefined): ApplyResult {
    const changes = emptyChanges();
    const result: ApplyResult = entry === undefined ? { ok: true, revision: this.state.revision } : this.state.apply(index, entry, changes);
    const { state, store } = this;
    for (const id of changes.nodes) store.put('node', id, state.nodes.get(id));
    for (const name of changes.apps) store.put('app', name, state.apps.get(name));
    for (const hash of changes.bundles) store.put('bundle', hash, state.bundles.get(hash));
    for (const id of changes.members) {
      store.put('member', id, state.members.get(id));
      store.put('memberKey', id, state.memberKeys.get(id));
    }
    if (changes.revision) store.putMeta('revision', state.revision);
    const { auth } = state;
    for (const id of changes.identities) store.put('identity', id, auth.identities.get(id));
    for (const id of changes.tokens) store.put('token', id, auth.tokens.get(id));
    for (const id of changes.grants) store.put('grant', id, auth.grants.get(id));
    for (const name of changes.roles) store.put('role', name, auth.roles.get(name));
    if (changes.auth) {
      store.putMeta('authRevision', auth.revision);
      store.putMeta('secured', auth.secured ? 1 : 0);
    }
    if (entry !== undefined) {
      // The record commits with the change it describes (one write transaction).
      for (const audit of auditRecordsOf(index, entry, result, this.auditHead)) {
        store.appendAudit(audit.record.seq, audit.bytes, audit.hash);
        this.auditHead = { seq: audit.record.seq, hash: audit.hash };
      }
    }
    store.putMeta('applied', index);
    this.pending = index;
    return result;
  }

  restoreSnapshot(index: LogIndex): ApplyResult {
    this.state = this.load();
    this.pending = this.store.metaNumber('applied');
    this.auditHead = this.store.auditHead() ?? emptyHead;
    if (this.pending < index) this.apply(index, undefined);
    return { ok: true, revision: this.state.revision };
  }

  applied(results: readonly AppliedEntry<ApplyResult>[]): void {
    const last = results[results.length - 1];
    if (last !== undefined) this.durable = last.index;
    for (const listener of this.listeners) listener(results);
  }

  /** Called after every durable batch of applied entries (watchers, the reconciler). */
  onApplied(listener: (results: readonly AppliedEntry<ApplyResult>[]) => void): void {
    this.listeners.push(listener);
  }

  /** The durable state, read from the store. */
  view(): ControlView {
    const { store } = this;
    return {
      revision: store.metaNumber('revision'),
      appliedIndex: store.metaNumber('applied'),
      nodes: [...store.all('node')].map((record) => record.value as NodeRecord),
      apps: [...store.all('app')].map((record) => record.value as AppRecord),
      members: new Map([...store.all('member')].map((record) => [record.name, record.value as string])),
    };
  }

  /** The durable audit chain's head. */
  durableAuditHead(): ChainHead {
    return this.store.auditHead() ?? emptyHead;
  }

  /** The durable audit records from `fromSeq` on, as stored. */
  auditRecords(fromSeq = 1): Iterable<{ readonly key: number; readonly bytes: Buffer }> {
    return this.store.auditRecords(fromSeq);
  }

  bundle(hash: string): Bundle | undefined {
    return this.store.get('bundle', hash) as Bundle | undefined;
  }

  private load(): ControlState {
    const state = new ControlState();
    const { store } = this;
    for (const { name, value } of store.all('node')) state.nodes.set(name, value as NodeRecord);
    for (const { name, value } of store.all('app')) state.apps.set(name, value as AppRecord);
    for (const { name, value } of store.all('bundle')) state.bundles.set(name, value as Bundle);
    for (const { name, value } of store.all('member')) state.members.set(name, value as string);
    for (const { name, value } of store.all('memberKey')) state.memberKeys.set(name, value as string);
    state.revision = store.metaNumber('revision');
    const { auth } = state;
    for (const { name, value } of store.all('identity')) auth.identities.set(name, value as IdentityRecord);
    for (const { name, value } of store.all('token')) auth.tokens.set(name, value as TokenRecord);
    for (const { name, value } of store.all('grant')) auth.grants.set(name, value as GrantRecord[]);
    for (const { name, value } of store.all('role')) auth.roles.set(name, value as RoleRecord);
    auth.revision = store.metaNumber('authRevision');
    auth.secured = store.metaNumber('secured') === 1;
    return state;
  }
}
