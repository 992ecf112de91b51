// Tokens, their attenuation and the permission check, as pure functions: a base token is known
// by its hash; an attenuated one holds only while every block is signed by the key before it
// and its proof matches the last; an attenuation can only narrow, whatever it claims; grants,
// roles and scopes decide together.
import { describe, expect, it } from 'vitest';
import { CredentialDirectory, type CredentialSnapshot } from '../../src/security/credentials.js';
import { hashPassword } from '../../src/security/passwords.js';
import { narrows, type Action } from '../../src/security/permissions.js';
import { attenuate, attenuatedPrefix, issueToken, parseToken } from '../../src/security/tokens.js';
import { Problem } from '../../src/model/problem.js';

const now = Date.parse('2026-12-02T12:00:00Z');

function directory(overrides: Partial<CredentialSnapshot> = {}, tokenScope = {}): { dir: CredentialDirectory; token: string } {
  const issued = issueToken();
  const dir = CredentialDirectory.of({
    revision: 1,
    identities: [{ id: 'bot', kind: 'service', disabled: false }],
    tokens: [{ id: issued.id, identity: 'bot', hash: issued.hash, publicKey: issued.publicKey, scope: tokenScope, revoked: false }],
    grants: [{ identity: 'bot', role: 'agent', apps: ['shop', 'blog'], regions: ['eu', 'us'] }],
    roles: [],
    ...overrides,
  });
  return { dir, token: issued.token };
}

async function outcome(dir: CredentialDirectory, token: string, action: Action): Promise<string> {
  try {
    const principal = await dir.authenticate(`Bearer ${token}`, now);
    return dir.refusal(principal, action, now) ?? 'allowed';
  } catch (error) {
    if (error instanceof Problem) return `${error.kind}: ${error.detail ?? ''}`;
    throw error;
  }
}

describe('tokens', () => {
  it('a base token is known by its secret; a changed secret or an unknown id is not', async () => {
    const { dir, token } = directory();
    expect(await outcome(dir, token, { op: 'read', app: 'shop', regions: ['eu'] })).toBe('allowed');
    const flipped = token.slice(0, -2) + (token.endsWith('A') ? 'B' : 'A') + token.slice(-1);
    expect(await outcome(dir, flipped, { op: 'read', app: 'shop' })).toMatch(/^unauthorized/);
    expect(await outcome(dir, issueToken().token, { op: 'read', app: 'shop' })).toMatch(/^unauthorized: the token is not known/);
    expect(await outcome(dir, 'not-a-token', { op: 'read', app: 'shop' })).toMatch(/^unauthorized: the token is not a Lockstep token/);
  });

  it('grants decide: the agent role on two apps and two regions, and nothing of the cluster', async () => {
    const { dir, token } = directory();
    expect(await outcome(dir, token, { op: 'deploy', app: 'blog', regions: ['us'] })).toBe('allowed');
    expect(await outcome(dir, token, { op: 'deploy', app: 'blog', regions: ['ap'] })).toMatch(/no role granted/);
    expect(await outcome(dir, token, { op: 'read', app: 'payroll' })).toMatch(/no role granted/);
    for (const op of ['admin', 'audit', 'operate', 'cluster'] as const) expect(await outcome(dir, token, { op })).toMatch(/no role granted/);
  });

  it('an attenuation narrows, offline; a second narrows again; a claim to widen changes nothing', async () => {
    const { dir, token } = directory();
    const readShop = attenuate(token, { apps: ['shop'], ops: ['read'] });
    expect(readShop.startsWith(attenuatedPrefix)).toBe(true);
    expect(await outcome(dir, readShop, { op: 'read', app: 'shop', regions: ['eu'] })).toBe('allowed');
    expect(await outcome(dir, readShop, { op: 'write', app: 'shop', regions: ['eu'] })).toMatch(/scope does not include 'write'/);
    expect(await outcome(dir, readShop, { op: 'read', app: 'blog', regions: ['eu'] })).toMatch(/scope does not include app 'blog'/);
    const euOnly = attenuate(readShop, { regions: ['eu'] });
    expect(await outcome(dir, euOnly, { op: 'read', app: 'shop', regions: ['eu'] })).toBe('allowed');
    expect(await outcome(dir, euOnly, { op: 'read', app: 'shop', regions: ['us'] })).toMatch(/region us/);
    // "Widening" by a later block: every block must allow, so the first still forbids.
    const wider = attenuate(readShop, { apps: ['shop', 'blog', 'payroll'], ops: ['read', 'write', 'admin'] });
    expect(await outcome(dir, wider, { op: 'write', app: 'shop', regions: ['eu'] })).toMatch(/scope does not include 'write'/);
    expect(await outcome(dir, wider, { op: 'read', app: 'blog', regions: ['eu'] })).toMatch(/scope does not include app 'blog'/);
  });

  it('an attenuated token with a block changed, dropped, or re-signed by a stranger does not verify', async () => {
    const { dir, token } = directory();
    const once = attenuate(token, { apps: ['shop'] });
    const twice = attenuate(once, { ops: ['read'] });
    const body = (text: string): { t: string; b: { s: Record<string, unknown>; k: string; g: string }[]; p: string } => JSON.parse(Buffer.from(text.slice(4), 'base64url').toString('utf8'));
    const encode = (value: unknown): string => `${attenuatedPrefix}${Buffer.from(JSON.stringify(value)).toString('base64url')}`;
    const changed = body(twice);
    changed.b[0] = { ...(changed.b[0] as (typeof changed.b)[number]), s: { apps: ['shop', 'blog'] } };
    expect(await outcome(dir, encode(changed), { op: 'read', app: 'blog' })).toMatch(/^unauthorized: attenuation 1 of the token is not signed/);
    const dropped = body(twice);
    expect(await outcome(dir, encode({ ...dropped, b: dropped.b.slice(0, 1) }), { op: 'write', app: 'shop' })).toMatch(/^unauthorized: the token's proof does not match/);
    const removedAll = body(twice);
    expect(await outcome(dir, encode({ ...removedAll, b: [] }), { op: 'write', app: 'shop' })).toMatch(/^unauthorized: an attenuated token carries 1 to/);
    // Another token's attenuation, with this token's id put in: signed by the wrong key.
    const stranger = body(attenuate(issueToken().token, { apps: ['shop'] }));
    expect(await outcome(dir, encode({ ...stranger, t: changed.t }), { op: 'read', app: 'shop' })).toMatch(/^unauthorized: attenuation 1/);
  });

  it('revoked and expired tokens, and their attenuations, are refused', async () => {
    const issued = issueToken();
    const base = { revision: 1, identities: [{ id: 'bot', kind: 'service' as const, disabled: false }], grants: [{ identity: 'bot', role: 'reader', apps: '*' as const, regions: '*' as const }], roles: [] };
    const revoked = CredentialDirectory.of({ ...base, tokens: [{ id: issued.id, identity: 'bot', hash: issued.hash, publicKey: issued.publicKey, scope: {}, revoked: true }] });
    expect(await outcome(revoked, issued.token, { op: 'read', app: 'x' })).toBe('unauthorized: the token was revoked');
    expect(await outcome(revoked, attenuate(issued.token, { ops: ['read'] }), { op: 'read', app: 'x' })).toBe('unauthorized: the token was revoked');
    const live = CredentialDirectory.of({ ...base, tokens: [{ id: issued.id, identity: 'bot', hash: issued.hash, publicKey: issued.publicKey, scope: { expiresAt: now + 1000 }, revoked: false }] });
    expect(await outcome(live, issued.token, { op: 'read', app: 'x' })).toBe('allowed');
    expect(await outcome(live, attenuate(issued.token, { expiresAt: now - 1 }), { op: 'read', app: 'x' })).toMatch(/^unauthorized: the token expired/);
  });

  it('a user signs in with a password; a wrong one, or an unknown user, is refused alike', async () => {
    const passwordHash = await hashPassword('correct horse battery');
    const dir = CredentialDirectory.of({ revision: 1, identities: [{ id: 'ann', kind: 'user', disabled: false, passwordHash }], tokens: [], grants: [{ identity: 'ann', role: 'admin', apps: '*', regions: '*' }], roles: [] });
    const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    const ann = await dir.authenticate(basic('ann', 'correct horse battery'), now);
    expect(dir.refusal(ann, { op: 'admin' }, now)).toBeUndefined();
    await expect(dir.authenticate(basic('ann', 'wrong horse battery'), now)).rejects.toThrow(/user name or password is wrong/);
    await expect(dir.authenticate(basic('bob', 'correct horse battery'), now)).rejects.toThrow(/user name or password is wrong/);
  }, 20_000);

  it('narrows() says whether one scope is within another', () => {
    expect(narrows({ apps: ['a'], ops: ['read'] }, { apps: ['a', 'b'] })).toBe(true);
    expect(narrows({}, { apps: ['a'] })).toBe(false);
    expect(narrows({ expiresAt: 10 }, { expiresAt: 20 })).toBe(true);
    expect(narrows({}, { expiresAt: 20 })).toBe(false);
  });

  it('parses what it issues, and refuses malformed scopes', () => {
    const issued = issueToken();
    expect(parseToken(issued.token)).toMatchObject({ kind: 'base', id: issued.id });
    expect(() => attenuate(issued.token, { ops: ['fly'] } as never)).toThrow(/scope.ops/);
    expect(() => attenuate(issued.token, { colour: 'red' } as never)).toThrow(/no field 'colour'/);
  });
});
