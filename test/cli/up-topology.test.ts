// upTopology: the processes, ids, zones and ports `lockstep up` derives from its flags, and the
// flags it refuses (each error names its flag).
import { describe, expect, it } from 'vitest';
import { parseUpFlags, upTopology, UpFlagError } from '../../src/cli/up-topology.js';

describe('upTopology', () => {
  it('numbers nodes per region, gives each its own zone, and hands out ports two by two from the base', () => {
    const topology = upTopology(parseUpFlags({ regions: 'eu:3,ap', deployRegions: 'eu', basePort: '4000', data: 'd', host: 'localhost' }));
    expect(topology.control.args).toEqual(['--id', 'c1', '--data', 'd/c1', '--host', 'localhost', '--http', '4000', '--grpc', '4001', '--auth-dir', 'd/auth']);
    expect(topology.nodes.map((node) => `${node.id} ${node.zone} ${node.httpPort}/${node.grpcPort} ${node.url}`)).toEqual([
      'eu1 eu-a 4002/4003 http://localhost:4002',
      'eu2 eu-b 4004/4005 http://localhost:4004',
      'eu3 eu-c 4006/4007 http://localhost:4006',
      'ap1 ap-a 4008/4009 http://localhost:4008',
    ]);
    expect(topology.nodes[3]?.args).toEqual(['--id', 'ap1', '--region', 'ap', '--zone', 'ap-a', '--data', 'd/ap1', '--host', 'localhost', '--http', '4008', '--grpc', '4009', '--control', 'localhost:4000', '--token-file', 'd/auth/system.token']);
    expect(topology.deploy).toEqual({ appDir: 'examples/shop', regions: ['eu'], replicas: 3 });
  });

  it.each([
    [{ regions: '' }, /--regions names no region/],
    [{ regions: 'EU:2' }, /--regions entry 'EU:2'/],
    [{ regions: 'eu:2,eu:1' }, /--regions names eu twice/],
    [{ regions: 'eu:27' }, /--regions eu must have 1 to 26 nodes/],
    [{ regions: 'eu:20,us:20', deployRegions: 'eu' }, /asks for 40 nodes; lockstep up starts at most 32/],
    [{ deployRegions: 'eu,eu' }, /--deploy-regions names a region twice/],
    [{ basePort: '0' }, /--base-port must be an integer from 1 to 65524/],
    [{ basePort: '9x' }, /--base-port/],
    [{ host: 'a b' }, /--host must be a host name/],
  ])('refuses %o', (flags, message) => {
    expect(() => parseUpFlags(flags)).toThrow(UpFlagError);
    expect(() => parseUpFlags(flags)).toThrow(message);
  });

  it('is secured unless --open: the control plane has no --auth-dir then, nor the nodes a --token-file', () => {
    const open = upTopology(parseUpFlags({ open: true, data: 'd' }));
    expect(open.control.args.slice(-1)).toEqual(['--open']);
    expect(open.control.args).not.toContain('--auth-dir');
    for (const node of open.nodes) expect(node.args).not.toContain('--token-file');
  });

  it('passes --simulate-wan to every node, with the default matrix or the one given, and refuses a bad one', () => {
    const plain = upTopology(parseUpFlags({}));
    expect(plain.nodes.every((node) => !node.args.includes('--simulate-wan'))).toBe(true);
    const wan = upTopology(parseUpFlags({ simulateWan: true }));
    for (const node of wan.nodes) expect(node.args.slice(-2)).toEqual(['--simulate-wan', 'eu-us=40,eu-ap=120,us-ap=90']);
    expect(wan.control.args).not.toContain('--simulate-wan');
    const custom = upTopology(parseUpFlags({ wanMatrix: 'eu-us=10' }));
    expect(custom.nodes[0]?.args.slice(-2)).toEqual(['--simulate-wan', 'eu-us=10']);
    expect(() => parseUpFlags({ wanMatrix: 'eu-us=fast' })).toThrow(/--wan-matrix: WAN matrix entry 'eu-us=fast'/);
  });

  it('gives every process --tls-dir <data>/tls with --tls, and none without', () => {
    const plain = upTopology(parseUpFlags({ data: 'd' }));
    expect(plain.control.args).not.toContain('--tls-dir');
    expect(plain.nodes.every((node) => !node.args.includes('--tls-dir'))).toBe(true);
    const tls = upTopology(parseUpFlags({ data: 'd', tls: true, simulateWan: true }));
    for (const child of [tls.control, ...tls.nodes]) expect(child.args.slice(-2), child.id).toEqual(['--tls-dir', 'd/tls']);
  });
});
