// The soak runner: many seeds in one process, or one seed replayed with its trace.
//   npx tsc -p tsconfig.json && node dist/test/sim/soak.js --seeds 5000 [--from N] [--time-limit-s S]
//   npx tsc -p tsconfig.json && node dist/test/sim/soak.js --seed 1234 --verbose
//   --profile figure8|mixed forces one fault profile for every seed (default: the seed's own).
//   --sabotage staleReads|lyingDisk plants a bug around the host (each seed should then fail).

import type { HostSabotage } from './host.js';
import { describeFailure, runSeed, type FaultProfile, type SeedResult } from './simulation.js';

interface SoakArguments {
  readonly from: number;
  readonly seeds: number;
  readonly verbose: boolean;
  readonly timeLimitS: number;
  readonly nodeCount?: number;
  /** Stop at the first failure instead of collecting them. */
  readonly failFast: boolean;
  readonly sabotage: HostSabotage;
  /** Force one fault profile for every seed instead of the seed's own. */
  readonly profile?: FaultProfile;
}

function sabotageOf(raw: string): HostSabotage {
  if (raw === 'none' || raw === 'staleReads' || raw === 'lyingDisk') return raw;
  throw new Error(`--sabotage is staleReads or lyingDisk, got ${raw}`);
}

function parseArguments(argv: readonly string[]): SoakArguments {
  const value = (flag: string): string | undefined => {
    const index = argv.indexOf(flag);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const number = (flag: string, fallback: number): number => {
    const raw = value(flag);
    if (raw === undefined) return fallback;
    const parsed = Number(raw);
    if (!Number.isFinite(parsed)) throw new Error(`${flag} needs a number, got ${raw}`);
    return parsed;
  };
  const single = value('--seed');
  const nodes = value('--nodes');
  const profile = value('--profile');
  if (profile !== undefined && profile !== 'mixed' && profile !== 'figure8') throw new Error(`--profile is mixed or figure8, got ${profile}`);
  return {
    from: single !== undefined ? number('--seed', 0) : number('--from', 1),
    seeds: single !== undefined ? 1 : number('--seeds', 100),
    verbose: argv.includes('--verbose'),
    timeLimitS: number('--time-limit-s', Number.POSITIVE_INFINITY),
    ...(nodes !== undefined ? { nodeCount: Number(nodes) } : {}),
    failFast: argv.includes('--fail-fast'),
    sabotage: sabotageOf(value('--sabotage') ?? 'none'),
    ...(profile !== undefined ? { profile } : {}),
  };
}

async function main(): Promise<void> {
  const args = parseArguments(process.argv.slice(2));
  const started = performance.now();
  const failures: SeedResult[] = [];
  let ran = 0;
  let wallMsMax = 0;
  let slowestSeed = 0;
  const totals = {
    operations: 0,
    unknownOutcomes: 0,
    crashes: 0,
    partitions: 0,
    confChangesApplied: 0,
    compactions: 0,
    snapshotsInstalled: 0,
    requestLegs: 0,
    figure8Rounds: 0,
    figure8Strikes: 0,
    checkerMs: 0,
  };
  let writesInFlightMax = 0;
  for (let seed = args.from; seed < args.from + args.seeds; seed++) {
    if ((performance.now() - started) / 1000 > args.timeLimitS) {
      console.log(`time limit reached after ${ran} seeds`);
      break;
    }
    const result = await runSeed({
      seed,
      verbose: args.verbose,
      sabotage: args.sabotage,
      ...(args.nodeCount !== undefined ? { nodeCount: args.nodeCount } : {}),
      ...(args.profile !== undefined ? { profile: args.profile } : {}),
    });
    ran++;
    for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += result.stats[key];
    writesInFlightMax = Math.max(writesInFlightMax, result.stats.writesInFlightMax);
    if (result.stats.wallMs > wallMsMax) {
      wallMsMax = result.stats.wallMs;
      slowestSeed = seed;
    }
    if (args.seeds === 1) console.log(JSON.stringify(result.stats));
    if (!result.ok) {
      failures.push(result);
      console.log(describeFailure(result));
      if (args.verbose || args.seeds === 1) {
        console.log('  last trace lines:');
        for (const line of result.failure!.traceTail.slice(-60)) console.log(`    ${line}`);
      }
      if (args.failFast) break;
    }
    if (ran % 100 === 0) {
      const elapsedS = (performance.now() - started) / 1000;
      console.log(`${ran} seeds, ${failures.length} failed, ${(elapsedS / ran).toFixed(3)} s/seed`);
    }
  }
  const elapsedS = (performance.now() - started) / 1000;
  console.log(
    `done: ${ran} seeds from ${args.from} in ${elapsedS.toFixed(1)} s (${(elapsedS / Math.max(ran, 1)).toFixed(3)} s/seed, ` +
      `slowest seed ${slowestSeed} ${wallMsMax} ms); ${failures.length} failed; totals ${JSON.stringify(totals)}; ` +
      `most writes in flight on one node ${writesInFlightMax}`,
  );
  if (failures.length > 0) {
    console.log(`failing seeds: ${failures.map((f) => f.seed).join(' ')}`);
    process.exitCode = 1;
  }
}

await main();
