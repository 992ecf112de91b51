// Per-role table permissions an app declares in config.yaml (Harper-style): they narrow what a
// role's grant allows on a table, never widen it, and a bad declaration is refused at deploy.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/app/config.js';
import { Problem } from '../../src/model/problem.js';
import { RequestGate, type TableRules } from '../../src/security/request-gate.js';
import { issueToken } from '../../src/security/tokens.js';

function gateWith(rules: TableRules): { gate: RequestGate; token: string } {
  const issued = issueToken();
  const gate = new RequestGate('node:eu1', 'eu', undefined, (app) => (app === 'shop' ? rules : undefined));
  gate.update({
    mode: 'secured',
    snapshot: {
      revision: 1,
      identities: [{ id: 'bot', kind: 'service', disabled: false }],
      tokens: [{ id: issued.id, identity: 'bot', hash: issued.hash, publicKey: issued.publicKey, scope: {}, revoked: false }],
      grants: [{ identity: 'bot', role: 'agent', apps: ['shop'], regions: '*' }],
      roles: [],
    },
  });
  return { gate, token: issued.token };
}

async function outcome(gate: RequestGate, token: string, op: 'read' | 'write' | 'subscribe', table: string): Promise<string> {
  try {
    await gate.admit({ method: 'GET', path: `/shop/${table}/x`, authorization: `Bearer ${token}`, source: 'test' }, { op, app: 'shop', table });
    return 'allowed';
  } catch (error) {
    if (error instanceof Problem) return `${error.kind}: ${error.detail ?? ''}`;
    throw error;
  }
}

describe('per-role table permissions of an app', () => {
  it('deny what they set false for the role, and nothing else', async () => {
    const { gate, token } = gateWith(parseConfig('roles:\n  agent:\n    Payment: { read: false, subscribe: false }\n').roles);
    expect(await outcome(gate, token, 'read', 'Payment')).toMatch(/^forbidden: bot: app 'shop' denies 'read' on table 'Payment' to the role that would allow it \(agent\)/);
    expect(await outcome(gate, token, 'subscribe', 'Payment')).toMatch(/^forbidden/);
    expect(await outcome(gate, token, 'write', 'Payment')).toBe('allowed');
    expect(await outcome(gate, token, 'read', 'Note')).toBe('allowed');
    // Refusals are kept for the audit trail.
    expect(gate.takeDenied(10).map((attempt) => attempt.reason)).toHaveLength(2);
  });

  it('cannot grant a role more than the cluster did', async () => {
    const { gate, token } = gateWith(parseConfig('roles:\n  admin:\n    Payment: { read: true }\n  agent:\n    Payment: { read: true, write: true }\n').roles);
    // The agent role has no 'audit' and no 'admin' whatever the app says; true widens nothing.
    expect(await outcome(gate, token, 'read', 'Payment')).toBe('allowed');
    await expect(gate.admit({ method: 'GET', path: '/_audit/shop', authorization: `Bearer ${token}`, source: 'test' }, { op: 'audit', app: 'shop' })).rejects.toThrow(/no role granted allows 'audit'/);
  });

  it('refuses a malformed declaration', () => {
    for (const text of ['roles:\n  Agent:\n    T: { read: false }\n', 'roles:\n  agent:\n    T: { delete: false }\n', 'roles:\n  agent:\n    T: { read: no-thanks }\n', 'roles: [agent]\n']) {
      expect(() => parseConfig(text), text).toThrow(ConfigError);
    }
  });
});
