// How long a cluster served nobody during a fault, measured from the clients' side: the longest
// stretch of wall time with no successful client operation.
//
// A success is an operation with a definite answer (a read's value, an acknowledged write, a
// compare-and-set that succeeded or failed), at the time the client got it. For one fault, the
// stretch is the longest gap between consecutive points of: the fault's injection, every success
// until the cluster settled again (every node serving, one leader agreed on), and the first
// success after that. So it covers both "injection to the first success after it" and "the
// longest gap between successes while the fault lasted". When faults are chained and the next
// one is injected before any success, the stretch ends there (and says so): what follows is the
// next fault's. Times are performance.now() ms.

/** One fault, from just before it was injected to when the cluster had settled after healing. */
export interface FaultWindow {
  readonly injectedMs: number;
  readonly settledMs: number;
}

export interface Stretch {
  readonly longestMs: number;
  /** What ended the last stretch: a success; the next fault's injection before any success; or
   *  nothing measured (no success after the window). The last two make longestMs a lower bound. */
  readonly endedBy: 'success' | 'nextFault' | 'unmeasured';
}

/** `successesMs` sorted ascending; `nextInjectedMs`: when the next fault of a chain started. */
export function longestNoSuccess(successesMs: readonly number[], window: FaultWindow, nextInjectedMs = Infinity): Stretch {
  let previousMs = window.injectedMs;
  let longestMs = 0;
  for (const successMs of successesMs) {
    if (successMs <= window.injectedMs) continue;
    if (successMs > window.settledMs && successMs > nextInjectedMs) break;
    longestMs = Math.max(longestMs, successMs - previousMs);
    previousMs = successMs;
    if (successMs > window.settledMs) return { longestMs, endedBy: 'success' };
  }
  if (nextInjectedMs !== Infinity) return { longestMs: Math.max(longestMs, nextInjectedMs - previousMs), endedBy: 'nextFault' };
  return { longestMs: Math.max(longestMs, window.settledMs - previousMs), endedBy: 'unmeasured' };
}

/** Stretches of many faults, by fault kind. */
export class StretchesByKind {
  private readonly byKind = new Map<string, { stretchesMs: number[]; worstRound: string; lowerBounds: number }>();

  add(kind: string, stretch: Stretch, round: string): void {
    let entry = this.byKind.get(kind);
    if (entry === undefined) {
      entry = { stretchesMs: [], worstRound: round, lowerBounds: 0 };
      this.byKind.set(kind, entry);
    }
    if (stretch.longestMs > Math.max(0, ...entry.stretchesMs)) entry.worstRound = round;
    entry.stretchesMs.push(stretch.longestMs);
    if (stretch.endedBy !== 'success') entry.lowerBounds++;
  }

  /** One line per kind: count, median, max (and the round of the max). */
  describe(targetMs: number): string[] {
    return [...this.byKind.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([kind, entry]) => {
        const sorted = [...entry.stretchesMs].sort((a, b) => a - b);
        const medianMs = sorted[Math.floor((sorted.length - 1) / 2)] as number;
        const maxMs = sorted[sorted.length - 1] as number;
        const unended = entry.lowerBounds === 0 ? '' : `, ${entry.lowerBounds} cut short by the next fault or the end (lower bounds)`;
        const mark = maxMs < targetMs ? '' : ` OVER ${targetMs} ms`;
        return `  ${kind}: ${sorted.length} faults, longest no-success stretch median ${Math.round(medianMs)} ms, max ${Math.round(maxMs)} ms (${entry.worstRound})${unended}${mark}`;
      });
  }
}
