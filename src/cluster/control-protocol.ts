// What a node and the control plane say to each other over HTTP (JSON): the node's heartbeat,
// with what it hosts and how each of its groups stands, and the control plane's answer, with
// the groups the node should host. Declared here, below both: the node (cluster) and the
// control plane (control) speak it.
import type { NodeId } from '../model/ids.js';
import type { CredentialSnapshot } from '../security/credentials.js';
import type { DeniedAttempt } from '../security/request-gate.js';

export type { DeniedAttempt };

export const heartbeatPath = '/v1/heartbeat';

export interface NodeIdentity {
  readonly id: NodeId;
  readonly region: string;
  readonly zone: string | undefined;
  readonly httpUrl: string;
  readonly grpcAddress: string;
}

/** How one group on the node stands, as the node sees it. */
export interface GroupReport {
  readonly app: string;
  readonly isLeader: boolean;
  /** '' when the node knows no leader. */
  readonly leader: NodeId;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Leader only: each member's matched index. */
  readonly match: Readonly<Record<NodeId, number>> | undefined;
  readonly activeVersion: number;
  readonly activeHash: string | undefined;
  /** The group's activation epoch (an Activate must name it). */
  readonly epoch: number;
  /** Staged versions not yet activated or aborted, with this replica's verdict on each. */
  readonly staged: readonly StagedVerdict[];
  /** Requests the active version answered here since it became active, and server errors
   *  among them (5xx other than 503). */
  readonly served: { readonly hash: string; readonly requests: number; readonly errors: number };
  /** The app's checks re-run against the active version, while the control plane validates it. */
  readonly checks?: ValidationChecksReport;
}

export interface StagedVerdict {
  readonly version: number;
  readonly hash: string;
  readonly phase: 'preparing' | 'prepared' | 'failed';
  /** The step under way ('load', 'schema', 'checks'), or the one that failed. */
  readonly step?: string;
  readonly reason?: string;
  readonly checks?: { readonly passed: number; readonly total: number };
}

export interface ValidationChecksReport {
  readonly hash: string;
  readonly runs: number;
  /** Runs with at least one failed check. */
  readonly failedRuns: number;
  readonly lastFailures: readonly { readonly name: string; readonly reason: string }[];
}

/** Denied attempts one heartbeat carries at most (the node keeps the rest for the next). */
export const deniedPerHeartbeatMax = 500;

export interface HeartbeatRequest {
  readonly node: NodeIdentity;
  readonly groups: readonly GroupReport[];
  /** The revision of the credentials the node holds (absent: none yet). */
  readonly credentialsRevision?: number;
  /** Requests the node refused since its last heartbeat, for the audit trail. */
  readonly denied?: readonly DeniedAttempt[];
}

/** What a node authorizes requests with: nothing (open, development mode), or the cluster's
 *  credentials (hashes and public keys, never secrets). */
export type CredentialsUpdate = { readonly mode: 'open' } | { readonly mode: 'secured'; readonly snapshot: CredentialSnapshot };

/** A group the node should host. */
export interface Assignment {
  readonly app: string;
  /** The founding voters when the group is brand new; empty when the node joins an existing
   *  group (the leader adds it as a learner). */
  readonly bootstrapVoters: readonly NodeId[];
}

/** The fleet as the control plane knows it: every node can route any app's requests with it
 *  and serves it as /_topology. */
export interface Directory {
  readonly nodes: readonly {
    readonly id: NodeId;
    readonly region: string;
    readonly zone: string | null;
    readonly url: string;
    readonly state: string;
  }[];
  readonly apps: readonly {
    readonly name: string;
    readonly regions: readonly string[];
    readonly voters: readonly NodeId[];
    readonly learners: readonly NodeId[];
    /** null when no leader is known. */
    readonly leader: NodeId | null;
  }[];
}

export interface HeartbeatResponse {
  readonly assignments: readonly Assignment[];
  /** Apps whose group no longer has this node (its removal is applied): stop and delete them. */
  readonly release: readonly string[];
  /** gRPC addresses of every node the assigned groups involve. */
  readonly peers: Readonly<Record<NodeId, string>>;
  readonly directory: Directory;
  /** When to send the next heartbeat. */
  readonly intervalMs: number;
  /** Apps whose active version (this hash) is in its validation window: re-run their checks. */
  readonly validating?: readonly { readonly app: string; readonly hash: string }[];
  /** Present when the node's credentials are out of date. */
  readonly credentials?: CredentialsUpdate;
}
