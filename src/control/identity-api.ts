// The control API's identity endpoints: identities, their grants, roles, and tokens. Each
// change is one control entry proposed in the caller's name, so `apply` authorizes it again
// and the audit trail records it; nothing here answers a credential hash or a secret, except
// the one answer that hands a newly issued token to the caller who asked for it.
import { Problem } from '../model/problem.js';
import type { Principal } from '../security/credentials.js';
import { hashPassword, passwordRefusal } from '../security/passwords.js';
import { builtInRoles, type Action, type Scope } from '../security/permissions.js';
import { issueToken, parseScope, TokenFormatError } from '../security/tokens.js';
import type { GrantRecord, IdentityRecord, RoleRecord, TokenRecord } from './auth-state.js';
import type { ControlCommand } from './commands.js';
import type { Caller, ControlPlane } from './control-plane.js';

/** The longest a token may live, and the default. */
const tokenLifetimeMsMax = 366 * 24 * 3_600_000;
const tokenLifetimeMsDefault = 90 * 24 * 3_600_000;

export interface Access {
  readonly principal: Principal;
  readonly caller: Caller;
  /** Throws 'forbidden' (and records the attempt) unless the caller may. */
  require(action: Action): void;
  can(action: Action): boolean;
}

export interface Answer {
  readonly status: number;
  readonly body: unknown;
}

function identityView(identity: IdentityRecord, grants: readonly GrantRecord[]) {
  return {
    id: identity.id,
    kind: identity.kind,
    disabled: identity.disabled,
    hasPassword: identity.passwordHash !== undefined,
    description: identity.description,
    createdAt: new Date(identity.createdAt).toISOString(),
    createdBy: identity.createdBy,
    grants: grants.map((grant) => ({ role: grant.role, apps: grant.apps, regions: grant.regions, grantedBy: grant.grantedBy, grantedAt: new Date(grant.grantedAt).toISOString() })),
  };
}

function tokenView(token: TokenRecord) {
  return {
    id: token.id,
    identity: token.identity,
    scope: token.scope,
    description: token.description,
    revoked: token.revoked,
    createdAt: new Date(token.createdAt).toISOString(),
    issuedBy: token.issuedBy,
    ...(token.scope.expiresAt === undefined ? {} : { expiresAt: new Date(token.scope.expiresAt).toISOString() }),
    ...(token.revokedAt === undefined ? {} : { revokedAt: new Date(token.revokedAt).toISOString(), revokedBy: token.revokedBy }),
  };
}

function roleView(role: { name: string; description: string; permissions: unknown }, builtIn: boolean) {
  return { name: role.name, description: role.description, builtIn, permissions: role.permissions };
}

function field(body: Record<string, unknown>, name: string, check: (value: unknown) => boolean, message: string): void {
  if (!check(body[name])) throw new Problem('invalid', { errors: [{ field: name, message }] });
}

function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) if (!allowed.includes(key)) throw new Problem('invalid', { errors: [{ field: key, message: `unknown field (${allowed.join(', ')})` }] });
}

const optionalString = (value: unknown): boolean => value === undefined || typeof value === 'string';

/** Proposes an auth command in the caller's name; a refusal by apply becomes a Problem. */
async function change(control: ControlPlane, access: Access, command: ControlCommand, status = 200): Promise<{ index: number; detail: string | undefined; status: number }> {
  const outcome = await control.propose(command, access.caller);
  if (!outcome.result.ok) {
    const { reason } = outcome.result;
    if (outcome.result.denied === true) throw new Problem('forbidden', { detail: reason });
    throw new Problem(/^no (identity|token|role)|holds no grant/.test(reason) ? 'not-found' : /exists|is granted|built-in/.test(reason) ? 'conflict' : 'invalid', { detail: reason });
  }
  return { index: outcome.index, detail: outcome.result.detail, status };
}

/** Routes /v1/identities, /v1/roles, /v1/tokens and /v1/whoami; undefined: not one of these. */
export async function identityRoute(control: ControlPlane, access: Access, method: string, parts: readonly string[], body: () => Promise<Record<string, unknown>>): Promise<Answer | undefined> {
  const { auth } = control.machine.state;
  const admin: Action = { op: 'admin' };
  const resource = parts[1];
  if (resource === 'whoami' && parts.length === 2) {
    if (method !== 'GET') throw new Problem('method-not-allowed', { detail: '/v1/whoami takes GET', headers: { Allow: 'GET' } });
    const { principal } = access;
    const identity = auth.identities.get(principal.identity);
    return {
      status: 200,
      body: {
        identity: principal.identity,
        kind: principal.kind,
        open: principal.open,
        token: principal.tokenId ?? null,
        scopes: principal.scopes,
        grants: (auth.grants.get(principal.identity) ?? []).map((grant) => ({ role: grant.role, apps: grant.apps, regions: grant.regions })),
        ...(identity === undefined ? {} : { description: identity.description }),
      },
    };
  }
  // Authorized before the method and path are looked at, so that any attempt on these, even at
  // an endpoint that does not exist, is refused as what it is and recorded.
  if (resource === 'identities') access.require(admin);
  if (resource === 'roles' && method !== 'GET') access.require(admin);
  if (resource === 'tokens') {
    const own = method === 'DELETE' && parts.length === 3 && auth.tokens.get(parts[2] as string)?.identity === access.principal.identity;
    if (!(method === 'GET' && parts.length === 2) && !own) access.require(admin);
  }
  if (resource === 'identities') {
    if (parts.length === 2 && method === 'GET') {
      return { status: 200, body: { identities: [...auth.identities.values()].map((identity) => identityView(identity, auth.grants.get(identity.id) ?? [])) } };
    }
    if (parts.length === 2 && method === 'POST') {
      const input = await body();
      onlyFields(input, ['id', 'kind', 'description', 'password']);
      field(input, 'id', (value) => typeof value === 'string', 'must be the new identity id');
      field(input, 'kind', (value) => value === undefined || value === 'user' || value === 'service', "must be 'user' (default) or 'service'");
      field(input, 'description', optionalString, 'must be a string');
      const kind = (input.kind ?? 'user') as 'user' | 'service';
      let passwordHash: string | undefined;
      if (input.password !== undefined) {
        const refused = passwordRefusal(input.password);
        if (refused !== undefined) throw new Problem('invalid', { errors: [{ field: 'password', message: refused }] });
        if (kind !== 'user') throw new Problem('invalid', { errors: [{ field: 'password', message: 'only a user has a password; a service uses tokens' }] });
        passwordHash = await hashPassword(input.password as string);
      }
      const done = await change(control, access, { op: 'identity.create', id: input.id as string, kind, description: (input.description as string | undefined) ?? '', ...(passwordHash === undefined ? {} : { passwordHash }) });
      return { status: 201, body: { identity: input.id, kind, index: done.index } };
    }
    const id = parts[2] as string;
    if (parts.length === 3 && method === 'GET') {
      const identity = auth.identities.get(id);
      if (identity === undefined) throw new Problem('not-found', { detail: `no identity '${id}'` });
      return { status: 200, body: { ...identityView(identity, auth.grants.get(id) ?? []), tokens: [...auth.tokens.values()].filter((token) => token.identity === id).map(tokenView) } };
    }
    if (parts.length === 3 && method === 'PATCH') {
      const input = await body();
      onlyFields(input, ['disabled', 'password']);
      field(input, 'disabled', (value) => value === undefined || typeof value === 'boolean', 'must be true or false');
      let passwordHash: string | undefined;
      if (input.password !== undefined) {
        const refused = passwordRefusal(input.password);
        if (refused !== undefined) throw new Problem('invalid', { errors: [{ field: 'password', message: refused }] });
        passwordHash = await hashPassword(input.password as string);
      }
      if (input.disabled === undefined && passwordHash === undefined) throw new Problem('invalid', { detail: 'nothing to change: give disabled or password' });
      const done = await change(control, access, { op: 'identity.update', id, ...(input.disabled === undefined ? {} : { disabled: input.disabled as boolean }), ...(passwordHash === undefined ? {} : { passwordHash }) });
      return { status: 200, body: { identity: id, index: done.index } };
    }
    if (parts.length === 4 && parts[3] === 'grants' && method === 'POST') {
      const input = await body();
      onlyFields(input, ['role', 'apps', 'regions']);
      field(input, 'role', (value) => typeof value === 'string', 'must be a role name');
      const nameSet = (value: unknown): boolean => value === undefined || value === '*' || (Array.isArray(value) && value.length > 0 && value.every((name) => typeof name === 'string'));
      field(input, 'apps', nameSet, "must be '*' or a list of app names");
      field(input, 'regions', nameSet, "must be '*' or a list of region names");
      const done = await change(control, access, { op: 'grant.add', identity: id, role: input.role as string, apps: (input.apps ?? '*') as '*' | string[], regions: (input.regions ?? '*') as '*' | string[] });
      return { status: 201, body: { identity: id, role: input.role, index: done.index } };
    }
    if (parts.length === 5 && parts[3] === 'grants' && method === 'DELETE') {
      const done = await change(control, access, { op: 'grant.remove', identity: id, role: parts[4] as string });
      return { status: 200, body: { identity: id, removed: parts[4], index: done.index } };
    }
    throw new Problem('not-found', { detail: `no identity endpoint ${method} /${parts.join('/')}` });
  }
  if (resource === 'roles') {
    if (parts.length === 2 && method === 'GET') {
      return { status: 200, body: { roles: [...[...builtInRoles.values()].map((role) => roleView(role, true)), ...[...auth.roles.values()].map((role: RoleRecord) => roleView(role, false))] } };
    }
    if (parts.length === 2 && method === 'POST') {
      const input = await body();
      onlyFields(input, ['name', 'description', 'permissions']);
      field(input, 'name', (value) => typeof value === 'string', 'must be a role name');
      field(input, 'description', optionalString, 'must be a string');
      field(input, 'permissions', Array.isArray, 'must be a list of {ops, apps, tables?, regions?}');
      const done = await change(control, access, { op: 'role.define', name: input.name as string, description: (input.description as string | undefined) ?? '', permissions: input.permissions as never });
      return { status: 201, body: { role: input.name, index: done.index } };
    }
    if (parts.length === 3 && method === 'DELETE') {
      const done = await change(control, access, { op: 'role.remove', name: parts[2] as string });
      return { status: 200, body: { removed: parts[2], index: done.index } };
    }
    throw new Problem('not-found', { detail: `no role endpoint ${method} /${parts.join('/')}` });
  }
  if (resource === 'tokens') {
    if (parts.length === 2 && method === 'GET') {
      // Everyone sees their own tokens; an admin sees everyone's.
      const mine = (token: TokenRecord): boolean => token.identity === access.principal.identity;
      const all = access.can(admin);
      return { status: 200, body: { tokens: [...auth.tokens.values()].filter((token) => all || mine(token)).map(tokenView) } };
    }
    if (parts.length === 2 && method === 'POST') {
      const input = await body();
      onlyFields(input, ['identity', 'scope', 'expiresInMs', 'description']);
      field(input, 'identity', (value) => typeof value === 'string', 'must be the identity the token is for');
      field(input, 'description', optionalString, 'must be a string');
      field(input, 'expiresInMs', (value) => value === undefined || (typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= tokenLifetimeMsMax), `must be milliseconds from 1 to ${tokenLifetimeMsMax}`);
      let scope: Scope;
      try {
        scope = parseScope(input.scope ?? {});
      } catch (error) {
        throw new Problem('invalid', { errors: [{ field: 'scope', message: error instanceof TokenFormatError ? error.message : 'must be a scope' }] });
      }
      if (scope.expiresAt !== undefined) throw new Problem('invalid', { errors: [{ field: 'scope.expiresAt', message: 'give expiresInMs instead' }] });
      const expiresAt = Date.now() + ((input.expiresInMs as number | undefined) ?? tokenLifetimeMsDefault);
      const issued = issueToken();
      const done = await change(control, access, { op: 'token.issue', identity: input.identity as string, token: { id: issued.id, hash: issued.hash, publicKey: issued.publicKey }, scope: { ...scope, expiresAt }, description: (input.description as string | undefined) ?? '' });
      return { status: 201, body: { id: issued.id, identity: input.identity, token: issued.token, expiresAt: new Date(expiresAt).toISOString(), index: done.index, note: 'the token is shown once: the cluster keeps only its hash' } };
    }
    if (parts.length === 3 && method === 'DELETE') {
      // Authorized above: one's own token, or an admin.
      const done = await change(control, access, { op: 'token.revoke', id: parts[2] as string });
      return { status: 200, body: { revoked: parts[2], index: done.index } };
    }
    throw new Problem('not-found', { detail: `no token endpoint ${method} /${parts.join('/')}` });
  }
  return undefined;
}
