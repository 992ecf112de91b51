// The one place the simulator imports the consensus core, so that the rest of test/sim/ speaks
// only the contract in src/raft/types.ts.

export { RawNode, MemoryStorage, confStateOf, defaultRaftConfig, encodeConfChange, decodeConfChange } from '../../src/raft/index.js';
