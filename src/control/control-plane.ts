// One member of the control plane: the control group (its own Raft group on the node host,
// over ControlMachine), the reports nodes send it, and the leader's duties (liveness, the
// reconciler, announcing its own HTTP URL). The HTTP API (api.ts) calls into it.
import { join } from 'node:path';
import { systemClock } from '../group/clock.js';
import { RaftGroup } from '../group/raft-group.js';
import type { GroupTiming } from '../group/timing.js';
import type { NodeHost } from '../cluster/node-host.js';
import type { LogIndex, NodeId } from '../model/ids.js';
import type { Logger } from '../observability/logger.js';
import type { RaftGroupMetrics } from '../observability/metrics.js';
import { ControlStore } from '../storage/control-store.js';
import { LmdbRaftStorage } from '../storage/raft-storage.js';
import { SnapshotFiles } from '../storage/snapshot-files.js';
import { CredentialDirectory } from '../security/credentials.js';
import type { Scope } from '../security/permissions.js';
import { storedFormOf } from '../security/tokens.js';
import { controlEntryCodec, type ControlCommand, type ControlEntry, type DeniedAttempt } from './commands.js';
import { exportCheckpoint } from './audit-export.js';
import { DeniedAttempts } from './denials.js';
import { LivenessMonitor, type LivenessTiming } from './liveness.js';
import { loadOrCreateAuditKey, signCheckpoint, type AuditKey, type SignedCheckpoint } from './audit-key.js';
import { ControlMachine } from './machine.js';
import { Reconciler } from './reconciler.js';
import type { RolloutTiming } from './rollout.js';
import { NodeReports } from './reports.js';
import type { ApplyResult } from './state.js';

export const controlGroupId = 'control';

/** The leader signs the audit head into the trail this often (when it moved). */
export const defaultAuditSealEveryMs = 60_000;

export interface ControlPlaneOptions {
  readonly memberId: NodeId;
  readonly dataDir: string;
  /** This member's HTTP API, as others reach it. */
  readonly httpUrl: string;
  /** Founding members (a new control plane); ignored once the log exists. */
  readonly initialMembers: readonly NodeId[];
  readonly host: NodeHost;
  readonly timing: GroupTiming;
  readonly liveness: LivenessTiming;
  readonly rollout: RolloutTiming;
  /** How often the leader signs the audit chain's head into the trail (when it moved). */
  readonly auditSealEveryMs?: number;
  /** A file or http(s) URL the leader sends each sealed checkpoint to (outside the cluster). */
  readonly auditExport?: string;
  /** A secured control plane: the tokens its first start registers (admin, and the system
   *  token nodes and the control plane itself use). Absent: open, development mode. */
  readonly security?: { readonly adminToken: string; readonly systemToken: string };
  /** Called once, on the member whose bootstrap entry registered the admin token. */
  readonly onBootstrapped?: () => void;
  readonly logger: Logger;
  readonly metrics: RaftGroupMetrics;
  readonly onFatal: (error: unknown, context: string) => void;
}

/** Who proposes an entry: an identity with the token it presented and that token's
 *  attenuations, or one of the cluster's own processes (`control:...`, `node:...`). */
export interface Caller {
  readonly actor: string;
  readonly token?: string;
  readonly caveats?: readonly Scope[];
}

export class ControlPlane {
  readonly machine: ControlMachine;
  readonly group: RaftGroup<ControlEntry, ApplyResult>;
  readonly reports = new NodeReports();
  readonly liveness: LivenessMonitor;
  /** This member's audit signing key. */
  private readonly auditKey: AuditKey;
  private sealTimer: NodeJS.Timeout | undefined;
  private sealing = false;
  readonly reconciler: Reconciler;
  /** Refused requests, on their way into the audit trail. */
  readonly denials: DeniedAttempts;
  /** The Authorization header the control plane sends nodes (undefined: open mode). */
  readonly clusterAuthorization: string | undefined;
  private readonly store: ControlStore;
  private directory: CredentialDirectory | undefined;

  constructor(readonly options: ControlPlaneOptions) {
    this.store = new ControlStore(join(options.dataDir, 'control', 'lmdb'));
    this.auditKey = loadOrCreateAuditKey(join(options.dataDir, 'control', 'audit-key.pem'));
    this.machine = new ControlMachine(this.store);
    if (this.machine.state.auth.secured && options.security === undefined) {
      throw new Error("this control plane's log is secured (its credentials were bootstrapped): start it with --auth-dir, which holds its system token");
    }
    this.clusterAuthorization = options.security === undefined ? undefined : `Bearer ${options.security.systemToken}`;
    this.denials = new DeniedAttempts((attempts) => this.propose({ op: 'audit.denied', attempts }, `control:${options.memberId}`), options.logger);
    this.group = new RaftGroup<ControlEntry, ApplyResult>({
      groupId: controlGroupId,
      nodeId: options.memberId,
      storage: new LmdbRaftStorage(this.store.root),
      machine: this.machine,
      codec: controlEntryCodec,
      snapshots: new SnapshotFiles(join(options.dataDir, 'control', 'snapshots'), this.store.root, ControlStore.appliedIndexOf, ControlStore.uint32KeyDatabases),
      transport: options.host.transportFor(controlGroupId),
      clock: systemClock,
      logger: options.logger.child({ group: controlGroupId }),
      metrics: options.metrics,
      initialVoters: options.initialMembers,
      electionTicks: options.timing.electionTicks,
      heartbeatTicks: options.timing.heartbeatTicks,
      snapshotEveryEntries: options.timing.snapshotEveryEntries,
      compactMarginEntries: options.timing.compactMarginEntries,
      onFatal: options.onFatal,
    });
    options.host.hostGroup(this.group);
    this.liveness = new LivenessMonitor(this, options.liveness, options.logger);
    this.reconciler = new Reconciler(this, options.rollout, options.logger);
    this.group.duties.add({
      name: 'control leader',
      start: () => {
        this.reports.reset(Date.now());
        void this.announce();
        void this.bootstrap();
      },
      stop: () => undefined,
    });
    this.group.duties.add({
      name: 'audit seal',
      start: () => {
        this.sealTimer ??= setInterval(() => void this.seal(), options.auditSealEveryMs ?? defaultAuditSealEveryMs);
        this.sealTimer.unref();
      },
      stop: () => {
        if (this.sealTimer !== undefined) clearInterval(this.sealTimer);
        this.sealTimer = undefined;
      },
    });
    this.group.duties.add(this.liveness);
    this.group.duties.add(this.reconciler);
  }

  /** The head of the durable audit chain, signed with this member's key. */
  signedAuditHead(): SignedCheckpoint {
    return signCheckpoint(this.auditKey, this.options.memberId, this.machine.durableAuditHead(), new Date().toISOString());
  }

  /** Proposes a command; resolves with its index and what applying it said. */
  async propose(command: ControlCommand, caller: string | Caller): Promise<{ readonly index: LogIndex; readonly result: ApplyResult }> {
    const who: Caller = typeof caller === 'string' ? { actor: caller } : caller;
    const entry: ControlEntry = {
      at: Date.now(),
      actor: who.actor,
      ...(who.token === undefined ? {} : { token: who.token }),
      ...(who.caveats === undefined || who.caveats.length === 0 ? {} : { caveats: who.caveats }),
      command,
    };
    const committed = await this.group.propose(entry, this.options.timing.requestTimeoutMs);
    return { index: committed.index, result: committed.result };
  }

  /** The credentials requests are checked against, as of the applied control state: open until
   *  the cluster is bootstrapped secured. */
  credentials(): CredentialDirectory {
    const { auth } = this.machine.state;
    if (!auth.secured) return (this.directory = this.directory?.open === true ? this.directory : CredentialDirectory.openMode());
    if (this.directory === undefined || this.directory.open || this.directory.revision !== auth.revision) this.directory = CredentialDirectory.of(auth.snapshot());
    return this.directory;
  }

  /** A refused request, for the audit trail. */
  recordDenied(attempt: DeniedAttempt): void {
    this.denials.record(attempt);
  }

  isLeader(): boolean {
    return this.group.isLeader();
  }

  /** The leader's HTTP URL, when known. */
  leaderUrl(): string | undefined {
    const leader = this.group.leader();
    if (leader === '') return undefined;
    if (leader === this.options.memberId) return this.options.httpUrl;
    return this.machine.state.members.get(leader);
  }

  /** A linearizable read point: the durable view reflects everything committed before it. */
  async readPoint(): Promise<void> {
    const index = await this.group.readIndex(this.options.timing.requestTimeoutMs);
    await this.group.waitForApplied(index, this.options.timing.requestTimeoutMs);
  }

  /** Signs the durable head into the trail, unless nothing was recorded since the last seal. */
  private async seal(): Promise<void> {
    const head = this.machine.durableAuditHead();
    if (head.seq === 0 || this.sealing) return;
    const [last] = this.machine.auditRecords(head.seq);
    if (last !== undefined && (JSON.parse(last.bytes.toString('utf8')) as { op?: string }).op === 'audit.seal') return;
    this.sealing = true;
    try {
      const signed = signCheckpoint(this.auditKey, this.options.memberId, head, new Date().toISOString());
      const sealed = await this.propose({ op: 'audit.seal', seq: signed.seq, hash: signed.hash, at: signed.at, signer: signed.signer, signature: signed.signature }, `control:${this.options.memberId}`);
      const target = this.options.auditExport;
      if (sealed.result.ok && target !== undefined) {
        await exportCheckpoint(target, signed).catch((error: unknown) => this.options.logger.warn({ err: error, target }, 'could not export the audit checkpoint'));
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not seal the audit trail');
    } finally {
      this.sealing = false;
    }
  }

  /** The first leader of a secured control plane registers its admin and system tokens. */
  private async bootstrap(): Promise<void> {
    const { security } = this.options;
    if (security === undefined || this.machine.state.auth.secured) return;
    try {
      const outcome = await this.propose({ op: 'auth.bootstrap', admin: storedFormOf(security.adminToken), system: storedFormOf(security.systemToken) }, `control:${this.options.memberId}`);
      if (outcome.result.ok) {
        this.options.logger.info('secured: admin and system identities created');
        this.options.onBootstrapped?.();
      }
      else if (!this.machine.state.auth.secured) this.options.logger.error({ reason: outcome.result.reason }, 'could not bootstrap the credentials');
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not bootstrap the credentials yet');
      setTimeout(() => {
        if (this.isLeader()) void this.bootstrap();
      }, 1_000).unref();
    }
  }

  /** True while a secured control plane has not yet registered its credentials: it answers
   *  nothing but 503 until it has, rather than running open for a moment. */
  bootstrapping(): boolean {
    return this.options.security !== undefined && !this.machine.state.auth.secured;
  }

  /** Every member records its URL while it leads (a new leader's followers learn it from the log). */
  private async announce(): Promise<void> {
    const { memberId, httpUrl } = this.options;
    const auditKey = this.auditKey.publicKey;
    if (this.machine.state.members.get(memberId) === httpUrl && this.machine.state.memberKeys.get(memberId) === auditKey) return;
    try {
      await this.propose({ op: 'member.announce', id: memberId, httpUrl, auditKey }, `control:${memberId}`);
    } catch (error) {
      this.options.logger.warn({ err: error }, 'could not announce this member');
    }
  }

  async close(): Promise<void> {
    if (this.sealTimer !== undefined) clearInterval(this.sealTimer);
    this.denials.stop();
    this.group.stop();
    await this.store.close();
  }
}
