import { describe, expect, it } from 'vitest';
import { decodeConfChange, encodeConfChange } from '../../src/raft/codec.js';
import { applyConfChangeTo, restoreConfState, simpleChange, type ChangerInput, type ChangerResult } from '../../src/raft/confchange.js';
import { confStateOf } from '../../src/raft/memory-storage.js';
import { confStateOfConfig, emptyTrackerConfig } from '../../src/raft/tracker.js';
import type { ConfChange, ConfState } from '../../src/raft/types.js';

function input(from?: ChangerResult): ChangerInput {
  return {
    config: from?.config ?? emptyTrackerConfig(),
    progress: from?.progress ?? new Map(),
    inflightCountMax: 4,
    inflightBytesMax: 0,
    lastIndex: 10,
  };
}

const restore = (confState: ConfState): ChangerResult => restoreConfState(input(), confState);
const apply = (from: ChangerResult, change: ConfChange): ChangerResult => applyConfChangeTo(input(from), change);

describe('membership changes', () => {
  it('applies a single voter change directly', () => {
    const result = apply(restore(confStateOf(['a', 'b', 'c'])), { changes: [{ type: 'addNode', nodeId: 'd' }], transition: 'auto' });
    expect(confStateOfConfig(result.config)).toEqual(confStateOf(['a', 'b', 'c', 'd']));
    expect(result.progress.get('d')!.next).toBe(10);
  });

  it('refuses to change two voters without a joint config', () => {
    const start = restore(confStateOf(['a', 'b', 'c']));
    expect(() =>
      simpleChange(input(start), [
        { type: 'addNode', nodeId: 'd' },
        { type: 'removeNode', nodeId: 'a' },
      ]),
    ).toThrow(/more than one voter/);
    expect(() => applyConfChangeTo(input(start), { changes: [], transition: 'auto' })).toThrow(/non-joint/);
  });

  it('enters a joint config for several changes and leaves it with an empty change', () => {
    const start = restore(confStateOf(['a', 'b', 'c']));
    const joint = apply(start, {
      changes: [{ type: 'addNode', nodeId: 'd' }, { type: 'addLearner', nodeId: 'c' }],
      transition: 'auto',
    });
    const jointState = confStateOfConfig(joint.config);
    expect(jointState).toEqual({ voters: ['a', 'b', 'd'], votersOutgoing: ['a', 'b', 'c'], learners: [], learnersNext: ['c'], autoLeave: true });
    // The joint ConfState round-trips through restore (snapshots carry it).
    expect(confStateOfConfig(restore(jointState).config)).toEqual(jointState);
    expect(() => apply(joint, { changes: [{ type: 'addNode', nodeId: 'e' }], transition: 'auto' })).toThrow(/joint/);
    const left = apply(joint, { changes: [], transition: 'auto' });
    expect(confStateOfConfig(left.config)).toEqual(confStateOf(['a', 'b', 'd'], ['c']));
    expect(left.progress.get('c')!.isLearner).toBe(true);
  });

  it('never removes the last voter', () => {
    expect(() => apply(restore(confStateOf(['a'])), { changes: [{ type: 'removeNode', nodeId: 'a' }], transition: 'auto' })).toThrow(
      /all voters/,
    );
  });

  it('leaves the original tracker untouched when a change is rejected', () => {
    const start = restore(confStateOf(['a', 'b'], ['c']));
    const removesEveryVoter: ConfChange = {
      changes: [
        { type: 'addNode', nodeId: 'c' },
        { type: 'removeNode', nodeId: 'a' },
        { type: 'removeNode', nodeId: 'b' },
        { type: 'removeNode', nodeId: 'c' },
      ],
      transition: 'auto',
    };
    expect(() => apply(start, removesEveryVoter)).toThrow(/all voters/);
    expect(start.progress.get('c')!.isLearner).toBe(true);
    expect([...start.config.learners]).toEqual(['c']);
  });
});

describe('conf change codec', () => {
  it('round-trips deterministically', () => {
    const change: ConfChange = { changes: [{ type: 'addLearner', nodeId: 'n4' }], transition: 'jointAutoLeave', context: new Uint8Array([1, 255]) };
    const bytes = encodeConfChange(change);
    expect(decodeConfChange(bytes)).toEqual(change);
    expect(encodeConfChange(decodeConfChange(bytes))).toEqual(bytes);
    expect(decodeConfChange(encodeConfChange({ changes: [], transition: 'auto' }))).toEqual({ changes: [], transition: 'auto' });
    expect(() => decodeConfChange(new TextEncoder().encode('{"changes":[{"type":"bogus","nodeId":"x"}],"transition":"auto"}'))).toThrow();
  });
});
