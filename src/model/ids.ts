// The names every part of Lockstep shares, declared once.

/** A position in a Raft log (1-based; 0 means "nothing yet"). */
export type LogIndex = number;
/** A Raft term. */
export type Term = number;
/** A node's id in the cluster (letters, digits, '-' and '_'). */
export type NodeId = string;
/** The name of one replicated group on a node: an app's name, or the control plane's group. */
export type GroupId = string;
/** An app's version number: 1, 2, 3, ... assigned when a bundle is staged. */
export type AppVersion = number;
