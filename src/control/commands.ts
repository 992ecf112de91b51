// The entries of the control plane's log. Every change of the control state (a node joins, its
// liveness changes, an app is deployed or placed, a membership step is taken) is one of these,
// and src/control/state.ts is the only code that applies them. Each entry carries who asked
// and when (the proposer's clock), so that applying it depends on nothing but the entry.
import { Packr } from 'msgpackr';
import type { EntryCodec } from '../group/types.js';
import type { Bundle } from '../model/app-entries.js';
import type { AppVersion, NodeId } from '../model/ids.js';
import type { DeniedAttempt } from '../cluster/control-protocol.js';
import type { IdentityKind } from '../security/credentials.js';
import type { NameSet, Permission, Scope } from '../security/permissions.js';
import type { StoredToken } from './auth-state.js';
import type { MembershipStep, PlacementSpec } from './placement-types.js';

export type NodeLiveness = 'up' | 'suspect' | 'down';

/** A replica's verdict on a staged version, as the control plane recorded it. */
export interface ReplicaVerdict {
  readonly phase: 'preparing' | 'prepared' | 'failed' | 'no report';
  /** The prepare step under way, or the one that failed. */
  readonly step?: string;
  readonly reason?: string;
  /** Checks passed of those declared. */
  readonly checks?: { readonly passed: number; readonly total: number };
}
export type DrainState = 'none' | 'draining' | 'drained';
export type StepOutcome = 'started' | 'done' | 'failed';

export interface NodeAddresses {
  readonly id: NodeId;
  readonly region: string;
  /** Undefined: the node is its own zone. */
  readonly zone: string | undefined;
  /** Base URL of its REST/WebSocket server, e.g. http://127.0.0.1:9001 */
  readonly httpUrl: string;
  /** host:port of its gRPC server. */
  readonly grpcAddress: string;
}

export type ControlCommand =
  /** A control-plane member says where its HTTP API is (followers forward to the leader's). */
  | {
      readonly op: 'member.announce';
      readonly id: NodeId;
      readonly httpUrl: string;
      /** The member's ed25519 public key (SPKI DER, base64), with which it signs audit checkpoints. */
      readonly auditKey?: string;
    }
  /** A node registers, or re-registers with new addresses (same id, same region). */
  | { readonly op: 'node.register'; readonly node: NodeAddresses }
  | { readonly op: 'node.liveness'; readonly id: NodeId; readonly liveness: NodeLiveness }
  | { readonly op: 'node.drain'; readonly id: NodeId; readonly drain: DrainState }
  /** Creates an app or changes its placement and/or its code. `expectRevision` is a plan's id:
   *  the deploy is refused if the placement state changed since the plan was made. */
  | {
      readonly op: 'app.deploy';
      readonly name: string;
      readonly spec: PlacementSpec;
      readonly bundle: Bundle;
      readonly allowBreaking: boolean;
      readonly expectRevision: number | undefined;
      /** After activation, watch the new version's error rate this long (0: do not). */
      readonly validateForMs?: number;
      /** A server-error rate above this during validation rolls the version back. */
      readonly maxErrorRate?: number;
    }
  /** The app's group has elected its first leader: later joiners never bootstrap it. */
  | { readonly op: 'app.founded'; readonly name: string }
  /** The app's group activated (or refused) a version the control plane asked for. */
  | {
      readonly op: 'app.activated';
      readonly name: string;
      readonly version: AppVersion;
      readonly hash: string;
      /** Each replica's verdict when the switch was decided (absent: found already active). */
      readonly verdicts?: Readonly<Record<NodeId, ReplicaVerdict>>;
      /** When the control plane found every replica prepared (ms since the epoch). */
      readonly preparedAt?: number;
      /** The app log index of the Activate entry: every replica switches there. */
      readonly switchIndex?: number;
    }
  | {
      readonly op: 'app.deployFailed';
      readonly name: string;
      readonly version: AppVersion;
      readonly reason: string;
      readonly verdicts?: Readonly<Record<NodeId, ReplicaVerdict>>;
    }
  /** The rollout of `version` staged it in the app's group as the group's version `appVersion`;
   *  every replica now prepares it and reports its verdict. */
  | { readonly op: 'app.rolloutStaged'; readonly name: string; readonly version: AppVersion; readonly appVersion: AppVersion }
  /** An operator asks to abort the rollout in progress. */
  | { readonly op: 'app.abortRollout'; readonly name: string }
  /** The validation window of an activated version passed (`detail` gives the figures). */
  | { readonly op: 'app.validated'; readonly name: string; readonly version: AppVersion; readonly detail: string }
  /** The activated version's error rate broke the threshold: it is rolled back (a rollout of
   *  the version active before it), recorded with the reason. */
  | { readonly op: 'app.validationFailed'; readonly name: string; readonly version: AppVersion; readonly reason: string }
  /** Roll the app back to the code of an earlier version: a rollout of that bundle, like any
   *  other (staged, prepared everywhere, activated), recorded as a rollback. */
  | { readonly op: 'app.rollback'; readonly name: string; readonly to: AppVersion }
  /** The leader signed the audit chain's head (record `seq`, hash `hash`) with its member key:
   *  the seal is itself an audit record, checked by `clusterctl audit verify`. */
  | {
      readonly op: 'audit.seal';
      readonly seq: number;
      readonly hash: string;
      readonly at: string;
      readonly signer: NodeId;
      readonly signature: string;
    }
  /** The first start of a secured control plane: the admin and the cluster's own (system)
   *  identities with one token each. Applied once; from then on every entry is authorized. */
  | { readonly op: 'auth.bootstrap'; readonly admin: StoredToken; readonly system: StoredToken }
  | { readonly op: 'identity.create'; readonly id: string; readonly kind: IdentityKind; readonly description: string; readonly passwordHash?: string }
  /** Disables or enables an identity, or sets a user's password (its scrypt hash). */
  | { readonly op: 'identity.update'; readonly id: string; readonly disabled?: boolean; readonly passwordHash?: string }
  | { readonly op: 'grant.add'; readonly identity: string; readonly role: string; readonly apps: NameSet; readonly regions: NameSet }
  | { readonly op: 'grant.remove'; readonly identity: string; readonly role: string }
  /** Defines (or redefines) a role of the cluster's own; built-in roles cannot be changed. */
  | { readonly op: 'role.define'; readonly name: string; readonly description: string; readonly permissions: readonly Permission[] }
  | { readonly op: 'role.remove'; readonly name: string }
  /** A token for `identity`: its hash and attenuation key only; the secret went to the caller. */
  | { readonly op: 'token.issue'; readonly identity: string; readonly token: StoredToken; readonly scope: Scope; readonly description: string }
  | { readonly op: 'token.revoke'; readonly id: string }
  /** Requests refused for want of a credential or a permission, on the control API or a node:
   *  each is an audit record. */
  | { readonly op: 'audit.denied'; readonly attempts: readonly DeniedAttempt[] }
  /** A membership step of an app's group, as the reconciler takes it. */
  | {
      readonly op: 'app.step';
      readonly name: string;
      readonly step: MembershipStep;
      readonly outcome: StepOutcome;
      readonly detail: string;
    };

export type { DeniedAttempt };

export interface ControlEntry {
  /** Proposer's wall clock, ms since the epoch. */
  readonly at: number;
  /** Who asked: an identity ("admin", "deploy-bot"), or the cluster's own processes
   *  ("control:c1", "control:rollout", "node:eu1"); "operator" on an open (development) cluster. */
  readonly actor: string;
  /** The token the identity presented (its id), and the scopes of its attenuations: apply
   *  authorizes the entry against the identity's grants and all of these. */
  readonly token?: string;
  readonly caveats?: readonly Scope[];
  readonly command: ControlCommand;
}

/** Every op, once: the Record makes the compiler name any op of ControlCommand left out. */
const opList: Record<ControlCommand['op'], true> = {
  'member.announce': true,
  'node.register': true,
  'node.liveness': true,
  'node.drain': true,
  'app.deploy': true,
  'app.founded': true,
  'app.activated': true,
  'app.deployFailed': true,
  'app.rolloutStaged': true,
  'app.abortRollout': true,
  'app.rollback': true,
  'app.validated': true,
  'app.validationFailed': true,
  'app.step': true,
  'audit.seal': true,
  'auth.bootstrap': true,
  'identity.create': true,
  'identity.update': true,
  'grant.add': true,
  'grant.remove': true,
  'role.define': true,
  'role.remove': true,
  'token.issue': true,
  'token.revoke': true,
  'audit.denied': true,
};
const ops = new Set<string>(Object.keys(opList));

const packr = new Packr({ useRecords: false, moreTypes: false });

export const controlEntryCodec: EntryCodec<ControlEntry> = {
  encode: (entry) => packr.pack(entry),
  decode: (data) => {
    const entry = packr.unpack(data) as ControlEntry;
    if (
      entry === null ||
      typeof entry !== 'object' ||
      typeof entry.at !== 'number' ||
      typeof entry.actor !== 'string' ||
      entry.command === null ||
      typeof entry.command !== 'object' ||
      !ops.has(entry.command.op)
    ) {
      throw new Error('not a control-plane entry');
    }
    return entry;
  },
};
