import { describe, expect, it } from 'vitest';
import { jointCommittedIndex, jointVoteResult, majorityCommittedIndex, majorityVoteResult } from '../../src/raft/quorum.js';

const ids = (...values: string[]): Set<string> => new Set(values);
const acked = (indexes: Record<string, number>) => (id: string) => indexes[id];

describe('majority committed index', () => {
  it('is the index held by a majority', () => {
    expect(majorityCommittedIndex(ids('a', 'b', 'c'), acked({ a: 5, b: 4, c: 1 }))).toBe(4);
    expect(majorityCommittedIndex(ids('a', 'b', 'c', 'd'), acked({ a: 5, b: 4, c: 3, d: 1 }))).toBe(3);
    expect(majorityCommittedIndex(ids('a', 'b', 'c', 'd', 'e'), acked({ a: 9, b: 9, c: 2, d: 1, e: 1 }))).toBe(2);
  });
  it('counts unknown voters as having nothing', () => {
    expect(majorityCommittedIndex(ids('a', 'b', 'c'), acked({ a: 5 }))).toBe(0);
    expect(majorityCommittedIndex(ids('a'), acked({ a: 7 }))).toBe(7);
  });
  it('lets an empty half of a joint config defer to the other half', () => {
    const config = { incoming: ids('a', 'b', 'c'), outgoing: ids() };
    expect(jointCommittedIndex(config, acked({ a: 5, b: 4, c: 1 }))).toBe(4);
  });
  it('requires both majorities in a joint config', () => {
    const config = { incoming: ids('a', 'b', 'c'), outgoing: ids('c', 'd', 'e') };
    expect(jointCommittedIndex(config, acked({ a: 9, b: 9, c: 3, d: 2, e: 1 }))).toBe(2);
  });
});

describe('vote results', () => {
  it('wins with a majority, is pending while it can still win, loses otherwise', () => {
    const voters = ids('a', 'b', 'c');
    expect(majorityVoteResult(voters, new Map([['a', true], ['b', true]]))).toBe('won');
    expect(majorityVoteResult(voters, new Map([['a', true], ['b', false]]))).toBe('pending');
    expect(majorityVoteResult(voters, new Map([['a', true], ['b', false], ['c', false]]))).toBe('lost');
    expect(majorityVoteResult(ids(), new Map())).toBe('won');
  });
  it('needs both halves in a joint config, and loses if either loses', () => {
    const config = { incoming: ids('a', 'b', 'c'), outgoing: ids('c', 'd', 'e') };
    expect(jointVoteResult(config, new Map([['a', true], ['b', true]]))).toBe('pending');
    expect(jointVoteResult(config, new Map([['a', true], ['b', true], ['c', true], ['d', true]]))).toBe('won');
    expect(jointVoteResult(config, new Map([['a', true], ['b', true], ['d', false], ['e', false]]))).toBe('lost');
  });
});
