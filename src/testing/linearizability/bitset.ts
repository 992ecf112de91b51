// The set of operations linearized so far, with an incrementally maintained hash so that the
// memo table lookup costs O(1) per step instead of O(n) to rehash the set.

import assert from 'node:assert/strict';

const wordBits = 32;

/** A 32-bit mix of an integer (splitmix32's finalizer): distinct, well-spread Zobrist keys. */
function mix32(value: number): number {
  let z = (value + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Bitset {
  readonly words: Uint32Array;
  /** XOR of the Zobrist key of every member: set/clear update it in O(1). */
  hash = 0;

  constructor(readonly size: number) {
    this.words = new Uint32Array(Math.ceil(size / wordBits));
  }

  set(bit: number): void {
    assert.ok(bit >= 0 && bit < this.size, `bit ${bit} outside [0, ${this.size})`);
    const word = bit >>> 5;
    const mask = 1 << (bit & 31);
    assert.ok((this.words[word]! & mask) === 0, `bit ${bit} already set`);
    this.words[word] = this.words[word]! | mask;
    this.hash = (this.hash ^ mix32(bit)) >>> 0;
  }

  clear(bit: number): void {
    const word = bit >>> 5;
    const mask = 1 << (bit & 31);
    assert.ok((this.words[word]! & mask) !== 0, `bit ${bit} not set`);
    this.words[word] = this.words[word]! & ~mask;
    this.hash = (this.hash ^ mix32(bit)) >>> 0;
  }

  /** A frozen copy of the words, for the memo table. */
  snapshotWords(): Uint32Array {
    return this.words.slice();
  }

  equalsWords(other: Uint32Array): boolean {
    const words = this.words;
    for (let i = 0; i < words.length; i++) {
      if (words[i] !== other[i]) return false;
    }
    return true;
  }
}
