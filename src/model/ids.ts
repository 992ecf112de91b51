// The names every layer shares, declared once. src/model/ imports nothing from the project:
// it is the floor the layer rule (docs/architecture.md) builds on.

/** Log position. The first real entry has index 1; index 0 is the empty log's sentinel. */
export type LogIndex = number;
/** Raft term. Starts at 0, never decreases across restarts. */
export type Term = number;
/** A member of a raft group, e.g. "n1". Never the empty string (the empty string means "none"). */
export type NodeId = string;
/** A replicated group (one Raft log), e.g. an app's name; unique on a node. */
export type GroupId = string;
/** An app's code version: 1, 2, 3, … assigned when a bundle is staged; 0 = none active yet. */
export type AppVersion = number;
