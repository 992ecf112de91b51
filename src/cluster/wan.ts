// Simulated wide-area latency, for tests, benchmarks and `lockstep up --simulate-wan` only:
// this machine has one loopback, so a node delays what it sends to a node of another region
// (Raft messages, ReadIndex calls, forwarded requests) by the one-way latency between the two
// regions, and answers a client that declares its region (X-Lockstep-Client-Region) one round
// trip late. Regions of other nodes come from the control plane's directory.
import type { NodeId } from '../model/ids.js';
import type { Directory } from './control-protocol.js';

/** The matrix `lockstep up --simulate-wan` uses: one-way milliseconds between regions. */
export const defaultWanMatrix = 'eu-us=40,eu-ap=120,us-ap=90';
/** Test-only request header naming the client's region. */
export const clientRegionHeader = 'x-lockstep-client-region';
const oneWayMsMax = 10_000;

/** Parses `a-b=ms,...` (symmetric); throws naming the bad part. */
export function parseWanMatrix(text: string): Map<string, number> {
  const matrix = new Map<string, number>();
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const match = /^([a-z0-9][a-z0-9-]{0,31}?)-([a-z0-9][a-z0-9-]{0,31})=(\d+)$/.exec(part);
    if (match === null) throw new Error(`WAN matrix entry '${part}' is not region-region=milliseconds (e.g. eu-us=40)`);
    const [, a, b, ms] = match as unknown as [string, string, string, string];
    const oneWay = Number(ms);
    if (a === b) throw new Error(`WAN matrix entry '${part}' names one region twice; a region has no latency to itself`);
    if (oneWay > oneWayMsMax) throw new Error(`WAN matrix entry '${part}' is over ${oneWayMsMax} ms`);
    matrix.set(pairKey(a, b), oneWay);
  }
  if (matrix.size === 0) throw new Error('the WAN matrix is empty');
  return matrix;
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

export class WanSimulation {
  private readonly regions = new Map<NodeId, string>();

  constructor(
    readonly selfRegion: string,
    private readonly matrix: ReadonlyMap<string, number>,
  ) {}

  /** One-way latency between two regions (0 within one, and for pairs the matrix omits). */
  between(a: string, b: string): number {
    return a === b ? 0 : (this.matrix.get(pairKey(a, b)) ?? 0);
  }

  /** One-way latency from this node to `peer` (0 while its region is unknown). */
  toPeer(peer: NodeId): number {
    const region = this.regions.get(peer);
    return region === undefined ? 0 : this.between(this.selfRegion, region);
  }

  /** Learns every node's region from the control plane's directory. */
  learn(directory: Directory): void {
    for (const node of directory.nodes) this.regions.set(node.id, node.region);
  }

  /** Round trip to a client that declared its region; 0 for a client that did not. */
  clientRoundTrip(header: string | string[] | undefined): number {
    const region = Array.isArray(header) ? header[0] : header;
    return region === undefined ? 0 : 2 * this.between(this.selfRegion, region);
  }
}

export function delay(ms: number): Promise<void> {
  return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}
