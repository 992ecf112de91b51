// The layer rule of docs/architecture.md: a module imports only from its own layer or below.
// Runs dependency-cruiser over the TypeScript sources of src/ with .dependency-cruiser.cjs, whose
// rules are built from the one array in docs/layers.cjs.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const { layers, utilities, exceptions } = createRequire(import.meta.url)('../../docs/layers.cjs') as {
  layers: string[][];
  utilities: string[];
  exceptions: { from: string; to: string; reason: string }[];
};

interface Finding {
  readonly rule: string;
  readonly from: string;
  readonly to: string;
}

/** Rule name -> what the rule allows, to print beside a violation. */
const ruleComments = new Map<string, string>();

async function checkLayers(): Promise<Finding[]> {
  const options = await extractDepcruiseOptions(join(repoRoot, '.dependency-cruiser.cjs'));
  // First comment wins: an exception's narrower rule shares its layer's name.
  for (const rule of options.ruleSet?.forbidden ?? []) {
    if (rule.name !== undefined && !ruleComments.has(rule.name)) ruleComments.set(rule.name, rule.comment ?? '');
  }
  const { output } = await cruise(['src'], { ...options, baseDir: repoRoot });
  const result = output as ICruiseResult;
  return result.summary.violations.map((violation) => ({
    rule: violation.rule.name,
    from: violation.from,
    // A cycle reads better as its whole path than as its first step.
    to: violation.cycle === undefined ? violation.to : violation.cycle.map((step) => step.name).join(' → '),
  }));
}

function readable(findings: readonly Finding[]): string {
  const lines = findings.map((finding) => `  ${finding.from} → ${finding.to}  (${finding.rule})`);
  for (const rule of new Set(findings.map((finding) => finding.rule))) lines.push(`  ${rule}: ${ruleComments.get(rule) ?? ''}`);
  return lines.join('\n');
}

/** An import from a module of one folder to another, read from the source text (for exceptions). */
function importsFolder(file: string, folder: string): boolean {
  const source = readFileSync(join(repoRoot, file), 'utf8');
  return new RegExp(`from '\\.\\./${folder}/`).test(source);
}

describe('layers', () => {
  it('src/ has no import that runs up the layers, and no cycle between folders', async () => {
    const findings = await checkLayers();
    expect(findings, `layer violations:\n${readable(findings)}\nthe order is in docs/layers.cjs`).toEqual([]);
  });

  it('reports an upward import planted in raft, and exactly that one', async () => {
    const planted = join(repoRoot, 'src/raft/__planted_upward_import.ts');
    writeFileSync(planted, "// Planted by test/architecture/layers.test.ts.\nimport { NodeServer } from '../http/server.js';\n\nexport const planted = NodeServer;\n");
    try {
      const findings = await checkLayers();
      expect(findings, readable(findings)).toEqual([{ rule: 'layer-raft', from: 'src/raft/__planted_upward_import.ts', to: 'src/http/server.ts' }]);
    } finally {
      rmSync(planted, { force: true });
    }
    expect(existsSync(planted)).toBe(false);
  });

  it('every folder of src/ has a place in the order', () => {
    const placed = new Set([...layers.flat(), ...utilities]);
    const entries = readdirSync(join(repoRoot, 'src'), { withFileTypes: true });
    const unplaced = entries.filter((entry) => !entry.isDirectory() || !placed.has(entry.name)).map((entry) => entry.name);
    expect(unplaced, 'add these to docs/layers.cjs (and docs/architecture.md), or move them into a folder that has a layer').toEqual([]);
  });

  it('docs/architecture.md lists the same order as docs/layers.cjs', () => {
    const text = readFileSync(join(repoRoot, 'docs/architecture.md'), 'utf8');
    const namesIn = (list: string) => [...list.matchAll(/`([a-z]+)`/g)].map((match) => match[1]);
    const documented = [...text.matchAll(/^\d+\. ((?:`[a-z]+`(?:, )?)+):/gm)].map((match) => namesIn(match[1]!));
    expect(documented).toEqual(layers);
    const documentedUtilities = /^Utilities: ((?:`[a-z]+`(?:, )?)+)\./m.exec(text);
    expect(documentedUtilities && namesIn(documentedUtilities[1]!)).toEqual(utilities);
  });

  it('every exception still matches an import (delete it from docs/layers.cjs once it does not)', () => {
    const stale = exceptions.filter((exception) => !existsSync(join(repoRoot, exception.from)) || !importsFolder(exception.from, exception.to));
    expect(stale).toEqual([]);
  });
});
