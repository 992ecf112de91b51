// Identities, tokens, grants and roles in the control state, and the rule every entry passes
// before it is applied: the caller it names must be allowed to do what it asks. The rule runs
// in `apply` on every member, so an entry that would escalate (an agent granting itself a
// role, issuing itself a token, defining a role) is refused and recorded even if a bug in an
// API let it into the log. Until `auth.bootstrap` is applied the cluster runs open (development
// mode) and every entry passes; after it, never again.
import type { CredentialSnapshot, IdentityKind, TokenEntry } from '../security/credentials.js';
import type { ControlCommand, ControlEntry } from './commands.js';
import { builtInRoles, operations, refusal, type Action, type Grant, type NameSet, type Permission, type RoleDefinition, type Scope } from '../security/permissions.js';

export interface IdentityRecord {
  readonly id: string;
  readonly kind: IdentityKind;
  readonly disabled: boolean;
  readonly passwordHash?: string;
  readonly description: string;
  readonly createdAt: number;
  readonly createdBy: string;
}

export interface TokenRecord extends TokenEntry {
  readonly description: string;
  readonly createdAt: number;
  readonly issuedBy: string;
  readonly revokedAt?: number;
  readonly revokedBy?: string;
}

export interface GrantRecord extends Grant {
  readonly grantedAt: number;
  readonly grantedBy: string;
}

export interface RoleRecord extends RoleDefinition {
  readonly definedAt: number;
  readonly definedBy: string;
}

/** A token as the cluster stores it: never the secret. */
export interface StoredToken {
  readonly id: string;
  readonly hash: string;
  readonly publicKey: string;
}

export const identityIdPattern = /^[a-z][a-z0-9_.@-]{0,62}$/;
export const roleNamePattern = /^[a-z][a-z0-9_-]{0,31}$/;
const tokenIdPattern = /^[0-9a-f]{16}$/;
const hexHash = /^[0-9a-f]{64}$/;
const rawKey = /^[A-Za-z0-9_-]{43}$/;
/** Limits, so that no entry grows the state without bound. */
export const identityCountMax = 10_000;
export const tokenCountMax = 50_000;
export const grantsPerIdentityMax = 64;
export const roleCountMax = 256;
export const permissionsPerRoleMax = 64;

/** The ops only the cluster's own processes propose (`control:<duty>`, `node:<id>`). */
const systemOps: ReadonlySet<string> = new Set([
  'member.announce',
  'audit.seal',
  'audit.denied',
  'auth.bootstrap',
  'node.liveness',
  'app.founded',
  'app.step',
  'app.activated',
  'app.deployFailed',
  'app.rolloutStaged',
  'app.validated',
  'app.validationFailed',
]);

/** What apply needs to know of the rest of the state to authorize an entry. */
export interface AuthContext {
  readonly appRegions: (app: string) => readonly string[] | undefined;
  readonly nodeRegion: (node: string) => string | undefined;
}

/** The command of an entry, as far as authorization reads it. */
export type AuthorizedCommand =
  | { readonly op: 'app.deploy'; readonly name: string; readonly spec: { readonly regions: readonly string[] } }
  | { readonly op: 'app.rollback' | 'app.abortRollout'; readonly name: string }
  | { readonly op: 'node.drain'; readonly id: string; readonly drain: string }
  | { readonly op: 'node.register'; readonly node: { readonly id: string } }
  | { readonly op: 'node.liveness'; readonly id: string; readonly liveness: string }
  | { readonly op: 'token.revoke'; readonly id: string }
  | { readonly op: string };

/** What an auth command changed, for the store to persist. */
export interface AuthChanges {
  readonly identities: Set<string>;
  readonly tokens: Set<string>;
  /** Identities whose grants changed. */
  readonly grants: Set<string>;
  readonly roles: Set<string>;
  auth: boolean;
}

export type AuthOutcome = { readonly ok: true; readonly detail?: string } | { readonly ok: false; readonly reason: string };

type AuthCommand = Extract<ControlCommand, { op: 'auth.bootstrap' | 'identity.create' | 'identity.update' | 'grant.add' | 'grant.remove' | 'role.define' | 'role.remove' | 'token.issue' | 'token.revoke' }>;

const regionName = /^[a-z0-9][a-z0-9-]{0,31}$/;
const appName = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
const descriptionBytesMax = 200;

export class AuthState {
  readonly identities = new Map<string, IdentityRecord>();
  readonly tokens = new Map<string, TokenRecord>();
  /** By identity. */
  readonly grants = new Map<string, GrantRecord[]>();
  readonly roles = new Map<string, RoleRecord>();
  /** Set once auth.bootstrap is applied: from then on every entry is authorized. */
  secured = false;
  /** Moves with every change of the above: nodes fetch a new credential snapshot when it does. */
  revision = 0;

  role(name: string): RoleDefinition | undefined {
    return builtInRoles.get(name) ?? this.roles.get(name);
  }

  /** Why the entry's caller may not do what it asks, or undefined. Deterministic: reads only
   *  the state and the entry (its own clock for expiry). */
  entryRefusal(actor: string, tokenId: string | undefined, caveats: readonly Scope[], at: number, command: AuthorizedCommand, context: AuthContext): string | undefined {
    if (!this.secured) return undefined;
    if (actor.startsWith('control:')) {
      if (command.op === 'node.drain' && 'drain' in command && command.drain === 'drained') return undefined;
      return systemOps.has(command.op) ? undefined : `${actor} is the control plane's own process: it does not propose ${command.op}`;
    }
    if (actor.startsWith('node:')) {
      const node = actor.slice('node:'.length);
      if (command.op === 'node.register' && 'node' in command && command.node.id === node) return undefined;
      if (command.op === 'node.liveness' && 'liveness' in command && command.id === node && command.liveness === 'up') return undefined;
      return `${actor} may register itself and report itself up, nothing else`;
    }
    const identity = this.identities.get(actor);
    if (identity === undefined || identity.disabled) return `identity '${actor}' is not active`;
    if (tokenId !== undefined) {
      const token = this.tokens.get(tokenId);
      if (token === undefined || token.identity !== actor) return `token ${tokenId} is not one of ${actor}'s`;
      if (token.revoked) return `token ${tokenId} was revoked`;
    }
    const scopes = tokenId === undefined ? caveats : [(this.tokens.get(tokenId) as TokenRecord).scope, ...caveats];
    if (systemOps.has(command.op) || command.op === 'node.register') return `only the cluster's own processes propose ${command.op}`;
    // Revoking one's own token only takes authority away.
    if (command.op === 'token.revoke' && 'id' in command && this.tokens.get(command.id)?.identity === actor) return undefined;
    const action = actionOf(command, context);
    return refusal(this.grants.get(actor) ?? [], scopes, action, (name) => this.role(name), at);
  }

  /** Applies an identity, grant, role or token command (already authorized). Every field is
   *  checked again here: an entry is data, whoever wrote it. */
  apply(entry: ControlEntry, command: AuthCommand, changes: AuthChanges): AuthOutcome {
    const refuse = (reason: string): AuthOutcome => ({ ok: false, reason });
    const description = 'description' in command ? command.description : '';
    if (typeof description !== 'string' || Buffer.byteLength(description) > descriptionBytesMax) return refuse(`a description is at most ${descriptionBytesMax} bytes`);
    switch (command.op) {
      case 'auth.bootstrap': {
        if (this.secured || this.identities.size > 0) return refuse('the cluster was bootstrapped already');
        if (!isStoredToken(command.admin) || !isStoredToken(command.system) || command.admin.id === command.system.id) return refuse('auth.bootstrap needs two distinct stored tokens');
        for (const [id, kind, role, token] of [
          ['admin', 'user', 'admin', command.admin],
          ['system', 'service', 'system', command.system],
        ] as const) {
          this.identities.set(id, { id, kind, disabled: false, description: `created at bootstrap`, createdAt: entry.at, createdBy: entry.actor });
          this.grants.set(id, [{ identity: id, role, apps: '*', regions: '*', grantedAt: entry.at, grantedBy: entry.actor }]);
          this.tokens.set(token.id, { ...token, identity: id, scope: {}, revoked: false, description: 'bootstrap', createdAt: entry.at, issuedBy: entry.actor });
          changes.identities.add(id);
          changes.grants.add(id);
          changes.tokens.add(token.id);
        }
        this.secured = true;
        return this.changed(changes, 'admin and system identities created; every entry is authorized from here on');
      }
      case 'identity.create': {
        if (typeof command.id !== 'string' || !identityIdPattern.test(command.id)) return refuse(`an identity id is lower-case letters, digits and _ . @ - (at most 63), starting with a letter`);
        if (command.kind !== 'user' && command.kind !== 'service') return refuse("an identity is a 'user' or a 'service'");
        if (this.identities.has(command.id)) return refuse(`identity '${command.id}' exists`);
        if (this.identities.size >= identityCountMax) return refuse(`the cluster holds at most ${identityCountMax} identities`);
        if (command.passwordHash !== undefined && (command.kind !== 'user' || typeof command.passwordHash !== 'string' || !command.passwordHash.startsWith('scrypt$'))) return refuse('only a user has a password, stored as an scrypt hash');
        this.identities.set(command.id, { id: command.id, kind: command.kind, disabled: false, ...(command.passwordHash === undefined ? {} : { passwordHash: command.passwordHash }), description, createdAt: entry.at, createdBy: entry.actor });
        changes.identities.add(command.id);
        return this.changed(changes);
      }
      case 'identity.update': {
        const identity = this.identities.get(command.id);
        if (identity === undefined) return refuse(`no identity '${command.id}'`);
        if (command.id === 'system' && command.disabled === true) return refuse("the system identity cannot be disabled: nodes would stop");
        if (command.passwordHash !== undefined && (identity.kind !== 'user' || typeof command.passwordHash !== 'string' || !command.passwordHash.startsWith('scrypt$'))) return refuse('only a user has a password, stored as an scrypt hash');
        if (command.disabled !== undefined && typeof command.disabled !== 'boolean') return refuse('disabled is true or false');
        this.identities.set(identity.id, { ...identity, ...(command.disabled === undefined ? {} : { disabled: command.disabled }), ...(command.passwordHash === undefined ? {} : { passwordHash: command.passwordHash }) });
        changes.identities.add(identity.id);
        return this.changed(changes);
      }
      case 'grant.add': {
        if (!this.identities.has(command.identity)) return refuse(`no identity '${command.identity}'`);
        if (this.role(command.role) === undefined) return refuse(`no role '${command.role}'`);
        if (!isNameSet(command.apps, appName)) return refuse("a grant's apps are '*' or a list of app names");
        if (!isNameSet(command.regions, regionName)) return refuse("a grant's regions are '*' or a list of region names");
        const grants = (this.grants.get(command.identity) ?? []).filter((grant) => grant.role !== command.role);
        if (grants.length >= grantsPerIdentityMax) return refuse(`an identity holds at most ${grantsPerIdentityMax} grants`);
        this.grants.set(command.identity, [...grants, { identity: command.identity, role: command.role, apps: command.apps, regions: command.regions, grantedAt: entry.at, grantedBy: entry.actor }]);
        changes.grants.add(command.identity);
        return this.changed(changes);
      }
      case 'grant.remove': {
        const grants = this.grants.get(command.identity) ?? [];
        if (!grants.some((grant) => grant.role === command.role)) return refuse(`'${command.identity}' holds no grant of role '${command.role}'`);
        if (command.identity === 'system' && command.role === 'system') return refuse('the system identity keeps its role: nodes would stop');
        this.grants.set(command.identity, grants.filter((grant) => grant.role !== command.role));
        changes.grants.add(command.identity);
        return this.changed(changes);
      }
      case 'role.define': {
        if (typeof command.name !== 'string' || !roleNamePattern.test(command.name)) return refuse('a role name is lower-case letters, digits, _ and - (at most 32), starting with a letter');
        if (builtInRoles.has(command.name)) return refuse(`'${command.name}' is a built-in role: it cannot be changed`);
        if (!this.roles.has(command.name) && this.roles.size >= roleCountMax) return refuse(`the cluster defines at most ${roleCountMax} roles`);
        if (!Array.isArray(command.permissions) || command.permissions.length === 0 || command.permissions.length > permissionsPerRoleMax || !command.permissions.every(isPermission)) {
          return refuse(`a role holds 1 to ${permissionsPerRoleMax} permissions, each {ops, apps, tables?, regions?}`);
        }
        if (command.permissions.some((permission) => permission.ops.includes('cluster'))) return refuse("the 'cluster' operation belongs to the built-in system role only");
        this.roles.set(command.name, { name: command.name, description, permissions: command.permissions, definedAt: entry.at, definedBy: entry.actor });
        changes.roles.add(command.name);
        return this.changed(changes);
      }
      case 'role.remove': {
        if (builtInRoles.has(command.name)) return refuse(`'${command.name}' is a built-in role: it cannot be removed`);
        if (!this.roles.has(command.name)) return refuse(`no role '${command.name}'`);
        for (const [identity, grants] of this.grants) {
          if (grants.some((grant) => grant.role === command.name)) return refuse(`role '${command.name}' is granted to '${identity}': remove the grant first`);
        }
        this.roles.delete(command.name);
        changes.roles.add(command.name);
        return this.changed(changes);
      }
      case 'token.issue': {
        if (!this.identities.has(command.identity)) return refuse(`no identity '${command.identity}'`);
        if (!isStoredToken(command.token)) return refuse('a token is stored as its id, hash and public key');
        if (this.tokens.has(command.token.id)) return refuse(`token ${command.token.id} exists`);
        if (this.tokens.size >= tokenCountMax) return refuse(`the cluster holds at most ${tokenCountMax} tokens; revoke some`);
        this.tokens.set(command.token.id, { ...command.token, identity: command.identity, scope: command.scope, revoked: false, description, createdAt: entry.at, issuedBy: entry.actor });
        changes.tokens.add(command.token.id);
        return this.changed(changes, `token ${command.token.id} for ${command.identity}`);
      }
      case 'token.revoke': {
        const token = this.tokens.get(command.id);
        if (token === undefined) return refuse(`no token ${command.id}`);
        if (token.revoked) return { ok: true, detail: 'already revoked' };
        this.tokens.set(token.id, { ...token, revoked: true, revokedAt: entry.at, revokedBy: entry.actor });
        changes.tokens.add(token.id);
        return this.changed(changes);
      }
    }
  }

  private changed(changes: AuthChanges, detail?: string): AuthOutcome {
    this.revision += 1;
    changes.auth = true;
    return detail === undefined ? { ok: true } : { ok: true, detail };
  }

  /** The snapshot nodes authorize requests with: hashes and public keys, never secrets. */
  snapshot(): CredentialSnapshot {
    return {
      revision: this.revision,
      identities: [...this.identities.values()].map((identity) => ({ id: identity.id, kind: identity.kind, disabled: identity.disabled, ...(identity.passwordHash === undefined ? {} : { passwordHash: identity.passwordHash }) })),
      tokens: [...this.tokens.values()].map((token) => ({ id: token.id, identity: token.identity, hash: token.hash, publicKey: token.publicKey, scope: token.scope, revoked: token.revoked })),
      grants: [...this.grants.values()].flat().map((grant) => ({ identity: grant.identity, role: grant.role, apps: grant.apps, regions: grant.regions })),
      roles: [...this.roles.values()].map((role) => ({ name: role.name, description: role.description, permissions: role.permissions })),
    };
  }
}

/** What a command asks to do, as a permission check reads it. */
function actionOf(command: AuthorizedCommand, context: AuthContext): Action {
  switch (command.op) {
    case 'app.deploy':
      return { op: 'deploy', app: (command as { name: string }).name, regions: (command as { spec: { regions: readonly string[] } }).spec.regions };
    case 'app.abortRollout': {
      const name = (command as { name: string }).name;
      return { op: 'deploy', app: name, regions: context.appRegions(name) ?? [] };
    }
    case 'app.rollback': {
      const name = (command as { name: string }).name;
      return { op: 'rollback', app: name, regions: context.appRegions(name) ?? [] };
    }
    case 'node.drain': {
      const region = context.nodeRegion((command as { id: string }).id);
      return { op: 'operate', ...(region === undefined ? {} : { regions: [region] }) };
    }
    default:
      // identity.*, grant.*, role.define, token.issue, another's token.revoke
      return { op: 'admin' };
  }
}

/** Checks a name set as an entry carries it. */
export function isNameSet(value: unknown, pattern: RegExp): value is NameSet {
  return value === '*' || (Array.isArray(value) && value.length > 0 && value.length <= 64 && value.every((name) => typeof name === 'string' && pattern.test(name)));
}

export function isStoredToken(value: unknown): value is StoredToken {
  const token = value as StoredToken | null;
  return token !== null && typeof token === 'object' && typeof token.id === 'string' && tokenIdPattern.test(token.id) && typeof token.hash === 'string' && hexHash.test(token.hash) && typeof token.publicKey === 'string' && rawKey.test(token.publicKey);
}

export function isPermission(value: unknown): value is Permission {
  const permission = value as Permission | null;
  return (
    permission !== null &&
    typeof permission === 'object' &&
    Array.isArray(permission.ops) &&
    permission.ops.length > 0 &&
    permission.ops.every((op) => operations.includes(op)) &&
    isNameSet(permission.apps, /^[A-Za-z][A-Za-z0-9_-]{0,62}$/) &&
    (permission.tables === undefined || isNameSet(permission.tables, /^[A-Za-z_][A-Za-z0-9_]{0,62}$/)) &&
    (permission.regions === undefined || isNameSet(permission.regions, /^[a-z0-9][a-z0-9-]{0,31}$/))
  );
}
