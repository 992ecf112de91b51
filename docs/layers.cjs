// The layer order of src/, lowest first: a module imports only from its own layer or below.
// This array is the one place the order is written. docs/architecture.md describes it,
// .dependency-cruiser.cjs builds its rules from it, and test/architecture/layers.test.ts checks
// both that src/ follows it and that the document lists the same order.
'use strict';

/** One entry per layer: the top-level folders of src/ it holds. Folders that share a layer may
 *  import each other, but not in a cycle. Folders that do not exist yet are listed so that they
 *  are covered the day they appear. */
const layers = [
  ['model'],
  ['raft'],
  ['storage'],
  ['schema', 'query'],
  ['state'],
  ['realtime'],
  ['group'],
  ['app'],
  ['security'],
  ['http'],
  ['cluster'],
  ['control'],
  ['client', 'ui'],
  ['cli'],
];

/** Leaf utilities: any layer above model may import them; they import only model. */
const utilities = ['observability', 'testing'];

/** Imports that still run up the layers, each with why and what removes it. An exception that no
 *  longer matches any import fails the layer test, so none outlives its reason. */
const exceptions = [];

module.exports = { layers, utilities, exceptions };
