// The layer rule of docs/architecture.md, enforced over the TypeScript sources of src/ (type-only
// imports count: a type is a dependency too). Every rule is generated from docs/layers.cjs, so the
// order is written in one place. Run it with `npm run check:layers`; test/architecture/ runs the
// same check in `npm test`.
'use strict';

const { layers, utilities, exceptions } = require('./docs/layers.cjs');

const folders = (names) => `^src/(${names.join('|')})/`;
const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const describe = (names) => (names.length === 0 ? 'nothing' : names.join(', '));

function layerRules() {
  const rules = [];
  layers.forEach((layer, rank) => {
    if (rank === 0) return; // model: covered by the stricter model-imports-nothing rule
    const above = layers.slice(rank + 1).flat();
    if (above.length === 0) return;
    const below = [...layers.slice(0, rank + 1).flat(), ...utilities];
    const name = `layer-${layer.join('-')}`;
    const comment = `src/${layer.join('/, src/')}/ may import only from its own layer or below: ${describe(below)}`;
    const own = exceptions.filter((exception) => layer.some((folder) => exception.from.startsWith(`src/${folder}/`)));
    rules.push({
      name,
      comment,
      severity: 'error',
      from: { path: folders(layer), ...(own.length > 0 ? { pathNot: own.map((e) => `^${escapeRegExp(e.from)}$`) } : {}) },
      to: { path: folders(above) },
    });
    // An excepted file still may not import anything else above its layer.
    for (const exception of own) {
      const stillForbidden = above.filter((folder) => folder !== exception.to);
      rules.push({
        name,
        comment: `${comment} (exception for ${exception.to}: ${exception.reason})`,
        severity: 'error',
        from: { path: `^${escapeRegExp(exception.from)}$` },
        to: { path: folders(stillForbidden) },
      });
    }
  });
  return rules;
}

module.exports = {
  forbidden: [
    {
      name: 'model-imports-nothing',
      comment: 'src/model/ is the floor: it imports nothing from the rest of the project',
      severity: 'error',
      from: { path: '^src/model/' },
      to: { path: '^src/', pathNot: '^src/model/' },
    },
    ...layerRules(),
    {
      name: 'utilities-import-only-model',
      comment: `the leaf utilities (${describe(utilities)}) may import only model and themselves`,
      severity: 'error',
      from: { path: folders(utilities) },
      to: { path: '^src/', pathNot: `^src/(model|$1)/` },
    },
    {
      name: 'no-folder-cycle',
      comment: 'no import cycle may leave the folder it starts in (cycles inside one folder are its own business)',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { circular: true, via: { pathNot: '^src/$1/' } },
    },
  ],
  options: {
    includeOnly: '^src/',
    doNotFollow: { path: 'node_modules' },
    // TypeScript 7 has no JavaScript compiler API for dependency-cruiser to parse with; swc parses
    // the .ts sources instead, type-only imports included.
    parser: 'swc',
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
