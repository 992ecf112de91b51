// The credential directory a node or the control plane authenticates and authorizes requests
// with: identities, stored tokens (hashes and attenuation keys, never secrets), grants and
// the cluster's own roles, as of one revision of the control state. Built from a snapshot and
// never changed: a newer revision is a new directory. `open` is the development mode, in which
// every request is let through as an anonymous caller.
import { createHash } from 'node:crypto';
import { Problem } from '../model/problem.js';
import { passwordMatches } from './passwords.js';
import { builtInRoles, refusal, type Action, type Grant, type RoleDefinition, type Scope } from './permissions.js';
import { parseToken, secretMatches, TokenFormatError, verifyBlocks } from './tokens.js';

export type IdentityKind = 'user' | 'service';

export interface IdentityEntry {
  readonly id: string;
  readonly kind: IdentityKind;
  readonly disabled: boolean;
  /** scrypt hash (src/security/passwords.ts); users only. */
  readonly passwordHash?: string;
}

export interface TokenEntry {
  readonly id: string;
  readonly identity: string;
  /** sha256 of the secret, hex. */
  readonly hash: string;
  /** The attenuation key's public half (raw, base64url). */
  readonly publicKey: string;
  readonly scope: Scope;
  readonly revoked: boolean;
}

export interface CredentialSnapshot {
  /** The control state's auth revision this snapshot reflects. */
  readonly revision: number;
  readonly identities: readonly IdentityEntry[];
  readonly tokens: readonly TokenEntry[];
  readonly grants: readonly Grant[];
  /** Roles the cluster defined (built-in ones are not listed). */
  readonly roles: readonly RoleDefinition[];
}

/** Who is asking, once authenticated. */
export interface Principal {
  readonly identity: string;
  readonly kind: IdentityKind | 'anonymous';
  /** The token presented; undefined for a password or in open mode. */
  readonly tokenId: string | undefined;
  /** The token's stored scope and every attenuation's, all of which must allow an action. */
  readonly scopes: readonly Scope[];
  /** Open mode: nothing is checked. */
  readonly open: boolean;
}

/** Verified attenuated tokens and passwords kept, so that a client repeating one pays the
 *  signature checks or the scrypt hash once. */
export const cachedCountMax = 1024;
/** A password check is trusted this long before it is hashed again. */
const passwordCacheMs = 60_000;

export const authenticateHeader = 'Bearer realm="lockstep", Basic realm="lockstep"';

function unauthorized(detail: string): Problem {
  return new Problem('unauthorized', { detail, headers: { 'WWW-Authenticate': authenticateHeader } });
}

export class CredentialDirectory {
  readonly revision: number;
  readonly open: boolean;
  private readonly identities = new Map<string, IdentityEntry>();
  private readonly tokens = new Map<string, TokenEntry>();
  private readonly grants = new Map<string, Grant[]>();
  private readonly roles = new Map<string, RoleDefinition>();
  /** Tokens already checked (a base token against its hash, an attenuated one's signatures), by
   *  text: a request that repeats one skips the parse, the sha256 or the signature checks (most
   *  of the gate's cost). Held in memory only, like the request that carried it, and dropped
   *  with the directory when the credentials change (a revocation, say). */
  private readonly checked = new Map<string, { readonly stored: TokenEntry; readonly caveats: readonly Scope[] }>();
  private readonly passwords = new Map<string, { readonly identity: string; readonly untilMs: number }>();

  private constructor(snapshot: CredentialSnapshot | undefined) {
    this.open = snapshot === undefined;
    this.revision = snapshot?.revision ?? 0;
    for (const identity of snapshot?.identities ?? []) this.identities.set(identity.id, identity);
    for (const token of snapshot?.tokens ?? []) this.tokens.set(token.id, token);
    for (const grant of snapshot?.grants ?? []) this.grants.set(grant.identity, [...(this.grants.get(grant.identity) ?? []), grant]);
    for (const role of snapshot?.roles ?? []) this.roles.set(role.name, role);
  }

  static of(snapshot: CredentialSnapshot): CredentialDirectory {
    return new CredentialDirectory(snapshot);
  }

  /** Development mode: every caller is let through. */
  static openMode(): CredentialDirectory {
    return new CredentialDirectory(undefined);
  }

  role(name: string): RoleDefinition | undefined {
    return builtInRoles.get(name) ?? this.roles.get(name);
  }

  /** The caller an Authorization header names; throws an 'unauthorized' Problem. Never says
   *  anything of the secret. */
  async authenticate(authorization: string | undefined, nowMs: number): Promise<Principal> {
    if (this.open) return { identity: 'anonymous', kind: 'anonymous', tokenId: undefined, scopes: [], open: true };
    if (authorization === undefined || authorization === '') throw unauthorized('this request needs a credential: Authorization: Bearer <token> (or Basic for a user)');
    const space = authorization.indexOf(' ');
    const scheme = space === -1 ? authorization : authorization.slice(0, space);
    const value = space === -1 ? '' : authorization.slice(space + 1).trim();
    if (/^bearer$/i.test(scheme)) return this.bearer(value, nowMs);
    if (/^basic$/i.test(scheme)) return this.basic(value, nowMs);
    throw unauthorized(`the Authorization scheme '${scheme.slice(0, 16)}' is not accepted (Bearer, Basic)`);
  }

  /** Why `principal` may not do `action`, or undefined when it may. `deniedTo(role)`: the app
   *  denies this action to that role (its config.yaml), so a grant of it does not count. */
  refusal(principal: Principal, action: Action, nowMs: number, deniedTo?: (role: string) => boolean): string | undefined {
    if (principal.open) return undefined;
    const identity = this.identities.get(principal.identity);
    if (identity === undefined || identity.disabled) return `identity '${principal.identity}' is not active`;
    const grants = this.grants.get(principal.identity) ?? [];
    const reason = refusal(grants, principal.scopes, action, (name) => this.role(name), nowMs);
    if (reason !== undefined || deniedTo === undefined) return reason;
    const kept = grants.filter((grant) => !deniedTo(grant.role));
    if (kept.length === grants.length || refusal(kept, principal.scopes, action, (name) => this.role(name), nowMs) === undefined) return undefined;
    return `app '${action.app ?? ''}' denies '${action.op}' on table '${action.table ?? ''}' to the role that would allow it (${grants.filter((grant) => deniedTo(grant.role)).map((grant) => grant.role).join(', ')})`;
  }

  /** Throws a 'forbidden' Problem unless `principal` may do `action`. */
  authorize(principal: Principal, action: Action, nowMs: number): void {
    const reason = this.refusal(principal, action, nowMs);
    if (reason !== undefined) throw new Problem('forbidden', { detail: `${principal.identity}: ${reason}` });
  }

  private bearer(text: string, nowMs: number): Principal {
    const known = this.checked.get(text);
    if (known !== undefined) return this.principalOf(known.stored, known.caveats, nowMs);
    let presented;
    try {
      presented = parseToken(text);
    } catch (error) {
      throw unauthorized(error instanceof TokenFormatError ? error.message : 'the token is malformed');
    }
    const stored = this.tokens.get(presented.id);
    if (stored === undefined) throw unauthorized('the token is not known to this cluster');
    let caveats: readonly Scope[] = [];
    if (presented.kind === 'base') {
      if (!secretMatches(presented.secret, stored.hash)) throw unauthorized('the token is not known to this cluster');
    } else {
      try {
        caveats = verifyBlocks(presented, stored.publicKey);
      } catch (error) {
        throw unauthorized(error instanceof TokenFormatError ? error.message : 'the token does not verify');
      }
    }
    remember(this.checked, text, { stored, caveats });
    return this.principalOf(stored, caveats, nowMs);
  }

  private principalOf(stored: TokenEntry, caveats: readonly Scope[], nowMs: number): Principal {
    if (stored.revoked) throw unauthorized('the token was revoked');
    const scopes = [stored.scope, ...caveats];
    const expired = scopes.find((scope) => scope.expiresAt !== undefined && nowMs >= scope.expiresAt);
    if (expired?.expiresAt !== undefined) throw unauthorized(`the token expired at ${new Date(expired.expiresAt).toISOString()}`);
    const identity = this.identities.get(stored.identity);
    if (identity === undefined || identity.disabled) throw unauthorized(`identity '${stored.identity}' is not active`);
    return { identity: identity.id, kind: identity.kind, tokenId: stored.id, scopes, open: false };
  }

  private async basic(encoded: string, nowMs: number): Promise<Principal> {
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw unauthorized('Basic credentials are user:password, base64-encoded');
    const user = decoded.slice(0, colon);
    const key = createHash('sha256').update(decoded).digest('hex');
    const identity = this.identities.get(user);
    const cached = this.passwords.get(key);
    const fresh = cached !== undefined && cached.identity === user && cached.untilMs > nowMs;
    if (!fresh) {
      // The hash runs for an unknown user too, so the answer's timing does not say who exists.
      const matches = await passwordMatches(decoded.slice(colon + 1), identity?.passwordHash ?? 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
      if (!matches || identity?.passwordHash === undefined) throw unauthorized('the user name or password is wrong');
      remember(this.passwords, key, { identity: user, untilMs: nowMs + passwordCacheMs });
    }
    if (identity === undefined || identity.disabled) throw unauthorized(`identity '${user}' is not active`);
    return { identity: identity.id, kind: identity.kind, tokenId: undefined, scopes: [], open: false };
  }
}

function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size >= cachedCountMax) cache.delete(cache.keys().next().value as string);
  cache.set(key, value);
}
