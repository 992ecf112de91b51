// Which node a client talks to: the fleet as any seed's /_topology describes it, the nodes that
// serve the app, and how far each is (round trips of `GET /_health?app=`, bounded, averaged,
// measured again periodically and after a failure). The nearest healthy node is chosen; a node
// that failed is passed over until a probe finds it healthy again.

/** A probe that takes longer than this counts as a failure. */
const probeTimeoutMs = 2_000;
/** At most this many nodes are probed (the nearest are what matter). */
const candidatesMax = 16;
/** Weight of a new sample in the moving average. */
const sampleWeight = 0.3;

interface TopologyNode {
  readonly id: string;
  readonly region?: string;
  readonly url?: string;
  readonly state?: string;
}

interface TopologyApp {
  readonly name: string;
  readonly voters?: readonly string[];
  readonly learners?: readonly string[];
}

interface Topology {
  readonly nodes?: readonly TopologyNode[];
  readonly apps?: readonly (TopologyApp | string)[];
}

export interface Candidate {
  readonly id: string;
  readonly url: string;
  readonly region: string | undefined;
  /** Moving average of probe round trips; undefined until one succeeded. */
  rttMs: number | undefined;
  /** The last probe or request failed. */
  down: boolean;
}

export interface NodeSelectorOptions {
  readonly seeds: readonly string[];
  readonly app: string;
  readonly headers: () => Record<string, string>;
  readonly region: string | undefined;
}

export class NodeSelector {
  private candidates: Candidate[] = [];
  private refreshing: Promise<void> | undefined;

  constructor(private readonly options: NodeSelectorOptions) {}

  /** The nodes known, nearest healthy first. */
  ranked(): readonly Candidate[] {
    const own = this.options.region;
    return [...this.candidates].sort((a, b) => {
      if (a.down !== b.down) return a.down ? 1 : -1;
      const rttA = a.rttMs ?? Number.POSITIVE_INFINITY;
      const rttB = b.rttMs ?? Number.POSITIVE_INFINITY;
      // Within a millisecond, the client's own region wins.
      if (Math.abs(rttA - rttB) > 1 || own === undefined) return rttA - rttB || a.id.localeCompare(b.id);
      return (a.region === own ? 0 : 1) - (b.region === own ? 0 : 1) || rttA - rttB;
    });
  }

  /** Reads the topology (from the first seed that answers) and probes every candidate. */
  refresh(): Promise<void> {
    this.refreshing ??= this.refreshNow().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** A request to `candidate` failed: pass it over, and look at the fleet again. */
  failed(candidate: Candidate): void {
    candidate.down = true;
    void this.refresh().catch(() => undefined);
  }

  private async refreshNow(): Promise<void> {
    const found = await this.discover();
    const previous = new Map(this.candidates.map((candidate) => [candidate.id, candidate]));
    this.candidates = found.map((node) => previous.get(node.id) ?? node);
    await Promise.all(this.candidates.map((candidate) => this.probe(candidate)));
  }

  private async discover(): Promise<Candidate[]> {
    let lastError: unknown;
    for (const seed of [...this.candidates.map((candidate) => candidate.url), ...this.options.seeds]) {
      try {
        const response = await fetch(`${trimSlash(seed)}/_topology`, { headers: this.options.headers(), signal: AbortSignal.timeout(probeTimeoutMs) });
        if (!response.ok) throw new Error(`${seed}/_topology answered ${response.status}`);
        return this.candidatesOf((await response.json()) as Topology);
      } catch (error) {
        lastError = error;
      }
    }
    if (this.candidates.length > 0) return this.candidates;
    throw new Error(`no seed answered /_topology: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
  }

  /** The nodes that host the app. Without a directory (`lockstep dev`, a cluster without a
   *  control plane) the seeds are the nodes. */
  private candidatesOf(topology: Topology): Candidate[] {
    const app = topology.apps?.find((entry): entry is TopologyApp => typeof entry === 'object' && entry.name === this.options.app);
    const hosts = new Set([...(app?.voters ?? []), ...(app?.learners ?? [])]);
    const nodes = (topology.nodes ?? []).filter((node) => node.url !== undefined && hosts.has(node.id) && (node.state === undefined || node.state === 'up' || node.state === 'draining'));
    if (nodes.length === 0) return this.options.seeds.map((seed) => ({ id: trimSlash(seed), url: trimSlash(seed), region: undefined, rttMs: undefined, down: false }));
    return nodes.slice(0, candidatesMax).map((node) => ({ id: node.id, url: trimSlash(node.url as string), region: node.region, rttMs: undefined, down: false }));
  }

  private async probe(candidate: Candidate): Promise<void> {
    const started = performance.now();
    try {
      const response = await fetch(`${candidate.url}/_health?app=${encodeURIComponent(this.options.app)}`, { headers: this.options.headers(), signal: AbortSignal.timeout(probeTimeoutMs) });
      await response.text();
      if (!response.ok) throw new Error(`health ${response.status}`);
      const sample = performance.now() - started;
      candidate.rttMs = candidate.rttMs === undefined ? sample : candidate.rttMs * (1 - sampleWeight) + sample * sampleWeight;
      candidate.down = false;
    } catch {
      candidate.down = true;
    }
  }
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
