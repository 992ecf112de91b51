import { describe, expect, it } from 'vitest';
import { NONE } from '../src/raft/types.js';

describe('project skeleton', () => {
  it('compiles and imports the raft vocabulary', () => {
    expect(NONE).toBe('');
  });
});
