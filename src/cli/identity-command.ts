// clusterctl's identity commands: whoami, identities, grants, roles and tokens, over the control
// API; and `token attenuate`, which needs no API at all: it narrows the token in use, offline.
import { readFileSync } from 'node:fs';
import type { Scope } from '../security/permissions.js';
import { attenuate, parseScope, TokenFormatError } from '../security/tokens.js';
import { ControlClient, ExitError, type Json } from './control-client.js';
import { table } from './text-table.js';

export interface IdentityFlags {
  readonly kind?: string | undefined;
  readonly description?: string | undefined;
  readonly 'password-file'?: string | undefined;
  readonly apps?: string | undefined;
  readonly regions?: string | undefined;
  readonly ops?: string | undefined;
  readonly tables?: string | undefined;
  readonly expires?: string | undefined;
  readonly permissions?: string | undefined;
}

type Print = (body: Json, render: (body: Json) => string) => void;

const list = (value: unknown): string => (value === '*' ? '*' : Array.isArray(value) && value.length > 0 ? value.join(',') : '-');
const names = (text: string | undefined): string[] | undefined => (text === undefined ? undefined : text.split(',').map((name) => name.trim()).filter((name) => name !== ''));

function usage(message: string): never {
  throw new ExitError(2, message);
}

/** --expires 30d / 12h / 45m / 90s, as milliseconds. */
export function lifetimeMs(text: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(text);
  if (match === null) usage(`--expires must be a duration such as 90s, 45m, 12h or 30d, not '${text}'`);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
  const ms = Number(match[1]) * unit;
  if (ms < 1_000) usage('--expires must be at least 1s');
  return ms;
}

function scopeOf(flags: IdentityFlags): Scope {
  const raw: Record<string, unknown> = {};
  if (flags.apps !== undefined) raw.apps = names(flags.apps);
  if (flags.ops !== undefined) raw.ops = names(flags.ops);
  if (flags.regions !== undefined) raw.regions = names(flags.regions);
  if (flags.tables !== undefined) raw.tables = names(flags.tables);
  try {
    return parseScope(raw);
  } catch (error) {
    if (error instanceof TokenFormatError) usage(error.message.replace(/^scope\./, '--'));
    throw error;
  }
}

function identitiesTable(body: Json): string {
  const identities = (body.identities ?? []) as Json[];
  return table(
    ['IDENTITY', 'KIND', 'STATE', 'GRANTS', 'CREATED BY', 'DESCRIPTION'],
    identities.map((identity) => [
      String(identity.id),
      String(identity.kind),
      identity.disabled === true ? 'disabled' : 'active',
      ((identity.grants ?? []) as Json[]).map((grant) => `${String(grant.role)}(apps ${list(grant.apps)}; regions ${list(grant.regions)})`).join(' ') || '-',
      String(identity.createdBy),
      String(identity.description ?? ''),
    ]),
  );
}

function tokensTable(body: Json): string {
  const tokens = (body.tokens ?? []) as Json[];
  return table(
    ['TOKEN', 'IDENTITY', 'STATE', 'EXPIRES', 'SCOPE', 'DESCRIPTION'],
    tokens.map((token) => {
      const scope = (token.scope ?? {}) as Json;
      const parts = ['apps', 'ops', 'regions', 'tables'].filter((key) => scope[key] !== undefined).map((key) => `${key} ${list(scope[key])}`);
      return [String(token.id), String(token.identity), token.revoked === true ? 'revoked' : 'active', String(token.expiresAt ?? 'never'), parts.join('; ') || 'all granted', String(token.description ?? '')];
    }),
  );
}

function rolesTable(body: Json): string {
  const roles = (body.roles ?? []) as Json[];
  return table(
    ['ROLE', 'BUILT-IN', 'PERMISSIONS', 'DESCRIPTION'],
    roles.map((role) => [String(role.name), role.builtIn === true ? 'yes' : 'no', ((role.permissions ?? []) as Json[]).map((p) => `${list(p.ops)} on ${list(p.apps)}`).join('; '), String(role.description ?? '')]),
  );
}

export async function runIdentity(command: string, client: ControlClient, positionals: readonly string[], flags: IdentityFlags, print: Print): Promise<number> {
  const [verb, ...args] = positionals;
  const one = (what: string): string => {
    if (args.length !== 1) usage(`${command} ${verb ?? ''} needs exactly one ${what}`);
    return args[0] as string;
  };
  const path = (id: string): string => encodeURIComponent(id);
  switch (command) {
    case 'whoami': {
      if (positionals.length > 0) usage('whoami takes no arguments');
      const body = await client.expect('GET', '/v1/whoami');
      print(body, (b) => `${String(b.identity)} (${String(b.kind)})${b.open === true ? ' - the cluster is open: no authentication' : ''}${b.token === null ? '' : `, token ${String(b.token)}`}\n${((b.grants ?? []) as Json[]).map((g) => `  ${String(g.role)} on apps ${list(g.apps)}, regions ${list(g.regions)}\n`).join('')}`);
      return 0;
    }
    case 'identities': {
      if (positionals.length > 0) usage('identities takes no arguments');
      print(await client.expect('GET', '/v1/identities'), identitiesTable);
      return 0;
    }
    case 'identity': {
      if (verb === 'create') {
        const id = one('identity id');
        let password: string | undefined;
        if (flags['password-file'] !== undefined) {
          try {
            password = readFileSync(flags['password-file'], 'utf8').replace(/\r?\n$/, '');
          } catch {
            usage(`cannot read --password-file ${flags['password-file']}`);
          }
        }
        const body = await client.expect('POST', '/v1/identities', { id, kind: flags.kind ?? 'user', ...(flags.description === undefined ? {} : { description: flags.description }), ...(password === undefined ? {} : { password }) });
        print(body, () => `identity ${id} created\n`);
        return 0;
      }
      if (verb === 'disable' || verb === 'enable') {
        const id = one('identity id');
        const body = await client.expect('PATCH', `/v1/identities/${path(id)}`, { disabled: verb === 'disable' });
        print(body, () => `identity ${id} ${verb}d\n`);
        return 0;
      }
      if (verb === 'show') {
        const id = one('identity id');
        const body = await client.expect('GET', `/v1/identities/${path(id)}`);
        print(body, (b) => `${identitiesTable({ identities: [b] })}\n${tokensTable({ tokens: b.tokens })}`);
        return 0;
      }
      return usage('identity create|show|disable|enable <id>');
    }
    case 'grant': {
      if (positionals.length !== 2) usage('grant <identity> <role> [--apps a,b|*] [--regions eu,us|*]');
      const [identity, role] = positionals as [string, string];
      const set = (text: string | undefined): '*' | string[] => (text === undefined || text === '*' ? '*' : (names(text) ?? []));
      const body = await client.expect('POST', `/v1/identities/${path(identity)}/grants`, { role, apps: set(flags.apps), regions: set(flags.regions) });
      print(body, () => `${identity} holds ${role} on apps ${flags.apps ?? '*'}, regions ${flags.regions ?? '*'}\n`);
      return 0;
    }
    case 'ungrant': {
      if (positionals.length !== 2) usage('ungrant <identity> <role>');
      const [identity, role] = positionals as [string, string];
      const body = await client.expect('DELETE', `/v1/identities/${path(identity)}/grants/${path(role)}`);
      print(body, () => `${identity} no longer holds ${role}\n`);
      return 0;
    }
    case 'roles': {
      if (positionals.length > 0) usage('roles takes no arguments');
      print(await client.expect('GET', '/v1/roles'), rolesTable);
      return 0;
    }
    case 'role': {
      if (verb === 'define') {
        const name = one('role name');
        if (flags.permissions === undefined) usage(`role define ${name} needs --permissions '[{"ops":["read"],"apps":["shop"]}]'`);
        let permissions: unknown;
        try {
          permissions = JSON.parse(flags.permissions);
        } catch {
          usage('--permissions must be JSON: a list of {ops, apps, tables?, regions?}');
        }
        const body = await client.expect('POST', '/v1/roles', { name, permissions, ...(flags.description === undefined ? {} : { description: flags.description }) });
        print(body, () => `role ${name} defined\n`);
        return 0;
      }
      if (verb === 'remove') {
        const name = one('role name');
        print(await client.expect('DELETE', `/v1/roles/${path(name)}`), () => `role ${name} removed\n`);
        return 0;
      }
      return usage('role define|remove <name>');
    }
    case 'token': {
      if (verb === 'issue') {
        const identity = one('identity id');
        const body = await client.expect('POST', '/v1/tokens', {
          identity,
          scope: scopeOf(flags),
          ...(flags.expires === undefined ? {} : { expiresInMs: lifetimeMs(flags.expires) }),
          ...(flags.description === undefined ? {} : { description: flags.description }),
        });
        // The secret goes to stdout only, once, for the caller to keep.
        print(body, (b) => `${String(b.token)}\n`);
        process.stderr.write(`token ${String(body.id)} for ${identity}, expires ${String(body.expiresAt)}; shown once: the cluster keeps only its hash\n`);
        return 0;
      }
      if (verb === 'list') {
        if (args.length > 0) usage('token list takes no arguments');
        print(await client.expect('GET', '/v1/tokens'), tokensTable);
        return 0;
      }
      if (verb === 'revoke') {
        const id = one('token id');
        print(await client.expect('DELETE', `/v1/tokens/${path(id)}`), () => `token ${id} revoked\n`);
        return 0;
      }
      if (verb === 'attenuate') {
        if (args.length > 0) usage('token attenuate takes no arguments: it narrows the token in use (LOCKSTEP_TOKEN or --token-file)');
        const token = client.presentedToken;
        if (token === undefined) usage('token attenuate narrows the token in use: give it with LOCKSTEP_TOKEN or --token-file');
        const scope = { ...scopeOf(flags), ...(flags.expires === undefined ? {} : { expiresAt: Date.now() + lifetimeMs(flags.expires) }) };
        if (Object.keys(scope).length === 0) usage('token attenuate needs at least one of --apps, --ops, --regions, --tables, --expires');
        let narrower: string;
        try {
          narrower = attenuate(token, scope);
        } catch (error) {
          if (error instanceof TokenFormatError) throw new ExitError(1, `cannot attenuate the token in use: ${error.message}`);
          throw error;
        }
        print({ token: narrower, scope }, (b) => `${String(b.token)}\n`);
        return 0;
      }
      return usage('token issue <identity> | list | revoke <id> | attenuate');
    }
    default:
      return usage(`unknown command '${command}'`);
  }
}
