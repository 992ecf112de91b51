// Roles, grants and the one question every surface asks: may this caller do this? A role is a
// list of permissions (operations on apps, tables and regions); a grant gives a role to an
// identity, narrowed to some apps and regions; a token's scope (and every attenuation of it)
// narrows further. A caller may act when one of its grants permits the action and every scope
// of its token allows it: scopes only ever take away.

/** What a caller may do. App-level: read, write, subscribe (data), deploy, rollback (code).
 *  Cluster-level: admin (identities, roles, grants, tokens), operate (drain nodes), audit (read
 *  the trail), cluster (the nodes' and control plane's own traffic: heartbeats, /_admin). */
export type Operation = 'read' | 'write' | 'subscribe' | 'deploy' | 'rollback' | 'admin' | 'operate' | 'audit' | 'cluster';

export const operations: readonly Operation[] = ['read', 'write', 'subscribe', 'deploy', 'rollback', 'admin', 'operate', 'audit', 'cluster'];
/** Operations that concern one app. The others are cluster-wide. */
export const appOperations: ReadonlySet<Operation> = new Set(['read', 'write', 'subscribe', 'deploy', 'rollback']);

/** Every name, or these. */
export type NameSet = '*' | readonly string[];

export interface Permission {
  readonly ops: readonly Operation[];
  readonly apps: NameSet;
  /** Absent: every table. */
  readonly tables?: NameSet;
  /** Absent: every region. */
  readonly regions?: NameSet;
}

export interface RoleDefinition {
  readonly name: string;
  readonly description: string;
  readonly permissions: readonly Permission[];
}

/** A role given to an identity, for these apps and regions only. */
export interface Grant {
  readonly identity: string;
  readonly role: string;
  readonly apps: NameSet;
  readonly regions: NameSet;
}

/** A narrowing carried by a token: each field present restricts, an absent one does not. */
export interface Scope {
  readonly apps?: readonly string[];
  readonly ops?: readonly Operation[];
  readonly regions?: readonly string[];
  readonly tables?: readonly string[];
  /** ms since the epoch. */
  readonly expiresAt?: number;
}

/** One thing a caller asks to do. `app` absent: a cluster-wide operation. */
export interface Action {
  readonly op: Operation;
  readonly app?: string;
  readonly table?: string;
  /** Every region the action touches (a deploy's regions, the region of the node serving a read). */
  readonly regions?: readonly string[];
}

const dataOps: readonly Operation[] = ['read', 'write', 'subscribe'];

/** The roles every cluster has. None can be changed or removed. */
export const builtInRoles: ReadonlyMap<string, RoleDefinition> = new Map(
  [
    { name: 'admin', description: 'everything: identities, roles, grants and tokens, every app and node, the audit trail', permissions: [{ ops: operations.filter((op) => op !== 'cluster'), apps: '*' }] },
    { name: 'operator', description: 'deploy, roll back and read every app, drain nodes, read the audit trail; no identities or grants', permissions: [{ ops: ['read', 'subscribe', 'deploy', 'rollback', 'operate', 'audit'], apps: '*' }] },
    { name: 'developer', description: 'deploy, roll back and read the apps granted', permissions: [{ ops: ['read', 'subscribe', 'deploy', 'rollback'], apps: '*' }] },
    { name: 'reader', description: "read and subscribe to the apps granted", permissions: [{ ops: ['read', 'subscribe'], apps: '*' }] },
    {
      name: 'agent',
      description: 'deploy, validate and roll back the apps and regions granted, and use their data; never identities, roles, grants, tokens or the audit trail',
      permissions: [{ ops: [...dataOps, 'deploy', 'rollback'], apps: '*' }],
    },
    { name: 'system', description: "the cluster's own processes: node heartbeats, the control plane's calls to nodes", permissions: [{ ops: ['cluster'], apps: '*' }] },
  ].map((role) => [role.name, role as RoleDefinition]),
);

function inSet(set: NameSet | undefined, name: string): boolean {
  return set === undefined || set === '*' || set.includes(name);
}

function allIn(set: NameSet | undefined, names: readonly string[]): boolean {
  return names.every((name) => inSet(set, name));
}

function permissionAllows(permission: Permission, grant: Grant, action: Action): boolean {
  if (!permission.ops.includes(action.op)) return false;
  const regions = action.regions ?? [];
  if (!allIn(permission.regions, regions) || !allIn(grant.regions, regions)) return false;
  if (action.app === undefined) {
    // Cluster-wide: only a permission and a grant over every app carry it, and a grant limited
    // to some regions only for an action within them (draining one of their nodes), never for
    // one that concerns no region (creating an identity).
    return permission.apps === '*' && grant.apps === '*' && (grant.regions === '*' || regions.length > 0);
  }
  if (!inSet(permission.apps, action.app) || !inSet(grant.apps, action.app)) return false;
  return action.table === undefined || inSet(permission.tables, action.table);
}

/** Why `scope` forbids the action, or undefined when it allows it. */
export function scopeRefusal(scope: Scope, action: Action, nowMs: number): string | undefined {
  if (scope.expiresAt !== undefined && nowMs >= scope.expiresAt) return `the token expired at ${new Date(scope.expiresAt).toISOString()}`;
  if (scope.ops !== undefined && !scope.ops.includes(action.op)) return `the token's scope does not include '${action.op}'`;
  if (scope.apps !== undefined && (action.app === undefined || !scope.apps.includes(action.app))) {
    return action.app === undefined ? `the token is limited to apps ${scope.apps.join(', ')}` : `the token's scope does not include app '${action.app}'`;
  }
  if (scope.tables !== undefined && action.table !== undefined && !scope.tables.includes(action.table)) return `the token's scope does not include table '${action.table}'`;
  if (scope.regions !== undefined) {
    const outside = (action.regions ?? []).filter((region) => !(scope.regions as readonly string[]).includes(region));
    if (outside.length > 0) return `the token's scope does not include region ${outside.join(', ')}`;
  }
  return undefined;
}

/** A role by name: a built-in one, else one the cluster defined. */
export type RoleLookup = (name: string) => RoleDefinition | undefined;

/** Why the caller may not act, or undefined when one grant permits it and every scope allows it. */
export function refusal(grants: readonly Grant[], scopes: readonly Scope[], action: Action, roles: RoleLookup, nowMs: number): string | undefined {
  for (const scope of scopes) {
    const reason = scopeRefusal(scope, action, nowMs);
    if (reason !== undefined) return reason;
  }
  for (const grant of grants) {
    const role = roles(grant.role);
    if (role !== undefined && role.permissions.some((permission) => permissionAllows(permission, grant, action))) return undefined;
  }
  const target = action.app === undefined ? 'the cluster' : `app '${action.app}'${action.table === undefined ? '' : ` table '${action.table}'`}`;
  const where = action.regions === undefined || action.regions.length === 0 ? '' : ` in ${action.regions.join(', ')}`;
  return `no role granted allows '${action.op}' on ${target}${where}`;
}

/** True when `inner` allows nothing that `outer` does not: a narrower (or equal) scope. */
export function narrows(inner: Scope, outer: Scope): boolean {
  const subset = (a: readonly string[] | undefined, b: readonly string[] | undefined): boolean => b === undefined || (a !== undefined && a.every((x) => b.includes(x)));
  const expires = outer.expiresAt === undefined || (inner.expiresAt !== undefined && inner.expiresAt <= outer.expiresAt);
  return subset(inner.apps, outer.apps) && subset(inner.ops, outer.ops) && subset(inner.regions, outer.regions) && subset(inner.tables, outer.tables) && expires;
}
