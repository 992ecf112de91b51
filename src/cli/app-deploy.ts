// Deploying an app directory through the control API, as `clusterctl deploy` and `lockstep up`
// both do: read the directory into a bundle, POST /v1/apps/<name>/deploy with the placement
// spec, then follow GET /v1/apps/<name> until the app converges, its new version is refused,
// or the deadline passes.
import { basename, resolve } from 'node:path';
import { readBundle } from '../app/bundle.js';
import { parseConfig } from '../app/config.js';
import { ExitError, sleep, type ControlClient, type Json } from './control-client.js';

/** How often a deploy in progress is looked at. */
const followPollMs = 500;

export interface DeploySpec {
  readonly regions: readonly string[];
  readonly replicas: number;
  readonly survive?: 'zone' | 'region' | undefined;
  readonly allowBreaking: boolean;
  /** Only show what would change (clusterctl deploy --plan). */
  readonly plan?: boolean | undefined;
  /** Apply the plan printed under this id, if nothing changed since. */
  readonly planId?: string | undefined;
  /** Watch the new version's error rate this long after activation (clusterctl --validate-for). */
  readonly validateForMs?: number | undefined;
  readonly maxErrorRate?: number | undefined;
}

export interface DeployRequest {
  readonly name: string;
  /** /v1/apps/<name> */
  readonly appPath: string;
  readonly body: Json;
}

/** Reads the app in `dir`; its name is `name`, else config.yaml's, else the directory's.
 *  Throws ExitError(1) when the directory does not hold a readable app. */
export async function deployRequest(dir: string, spec: DeploySpec, name?: string): Promise<DeployRequest> {
  let bundle;
  try {
    bundle = await readBundle(resolve(dir));
  } catch (error) {
    throw new ExitError(1, `cannot read the app in ${dir}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const appName = name ?? parseConfig(bundle.files['config.yaml']).name ?? basename(resolve(dir));
  return {
    name: appName,
    appPath: `/v1/apps/${encodeURIComponent(appName)}`,
    body: {
      regions: spec.regions,
      replicas: spec.replicas,
      ...(spec.survive === undefined ? {} : { survive: spec.survive }),
      bundle: { files: bundle.files },
      allowBreaking: spec.allowBreaking,
      ...(spec.plan === true ? { plan: true } : {}),
      ...(spec.planId === undefined ? {} : { planId: spec.planId }),
      ...(spec.validateForMs === undefined ? {} : { validateForMs: spec.validateForMs }),
      ...(spec.maxErrorRate === undefined ? {} : { maxErrorRate: spec.maxErrorRate }),
    },
  };
}

export type DeployOutcome =
  | { readonly kind: 'converged'; readonly status: Json }
  | { readonly kind: 'refused'; readonly status: Json; readonly version: number; readonly reason: string }
  | { readonly kind: 'timeout'; readonly status: Json };

/** Follows the app after a deploy the control plane accepted at log index `deployIndex`;
 *  `onStep` sees each membership step recorded after it, once. */
export async function followDeploy(
  client: ControlClient,
  request: Pick<DeployRequest, 'appPath'>,
  deployIndex: number,
  timeoutMs: number,
  onStep: (step: Json) => void,
  /** Each replica's verdict on the version being rolled out, when it changes. */
  onReplica: (node: string, verdict: Json) => void = () => undefined,
  /** The version whose rollout this deploy started (undefined: it started none). */
  version?: number,
): Promise<DeployOutcome> {
  const deadline = Date.now() + timeoutMs;
  const seenSteps = new Set<number>();
  const seenVerdicts = new Map<string, string>();
  for (;;) {
    const status = await client.expect('GET', request.appPath);
    // Only this deploy's rollout (not a rollback the control plane starts after it).
    const ours = version === undefined || (status.rollout as Json | null | undefined)?.version === version;
    for (const member of ours ? ((status.members ?? []) as Json[]) : []) {
      const verdict = member.rollout as Json | null;
      if (verdict === null) continue;
      const text = JSON.stringify([verdict.phase, verdict.step, verdict.reason, verdict.checks]);
      if (seenVerdicts.get(String(member.node)) === text) continue;
      seenVerdicts.set(String(member.node), text);
      onReplica(String(member.node), verdict);
    }
    for (const step of (status.steps ?? []) as Json[]) {
      const index = Number(step.index);
      if (index <= deployIndex || seenSteps.has(index)) continue;
      seenSteps.add(index);
      onStep(step);
    }
    // The rollout this deploy started (if it started one) decides: aborted or rolled back after
    // its validation is a refusal even once the app has converged again on the old code.
    const ended = version === undefined ? undefined : ((status.history ?? []) as Json[]).find((rollout) => rollout.version === version);
    // A version rolled back after its validation: the answer waits for the rollback to end, so
    // that the old version serves everywhere when the command returns.
    const rollingBack = ended?.outcome === 'rolledBack' && status.rollout !== null && status.rollout !== undefined;
    if (ended !== undefined && ended.outcome !== 'activated' && !rollingBack) return { kind: 'refused', status, version: Number(ended.version), reason: String(ended.reason) };
    const failure = status.failure as Json | null;
    if (version === undefined && failure !== null && failure.version === status.desiredVersion) return { kind: 'refused', status, version: Number(failure.version), reason: String(failure.reason) };
    if (status.converged === true && (version === undefined || ended !== undefined)) return { kind: 'converged', status };
    if (Date.now() > deadline) return { kind: 'timeout', status };
    await sleep(followPollMs);
  }
}
