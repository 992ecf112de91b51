#!/usr/bin/env node
// `clusterctl`: the operator's CLI for the control plane. Noun-verb commands over the control
// API; `-o json` prints the API's JSON unchanged (documented in the README), `-o table` (the
// default) a table. Exit codes: 0 success, 1 refused or failed, 2 usage error, 3 control plane
// unreachable.
import { parseArgs } from 'node:util';
import { deployRequest, followDeploy } from './app-deploy.js';
import { runAudit } from './audit-command.js';
import { AuthFileError, readTokenFile } from './auth-files.js';
import { runIdentity } from './identity-command.js';
import { ControlClient, ExitError, problemText, sleep, type Json } from './control-client.js';
import { table } from './text-table.js';

const usage = `usage: clusterctl <command> [options]   (--control <url>[,<url>...] or LOCKSTEP_CONTROL, default http://127.0.0.1:9900;
                                          --token-file <file> or LOCKSTEP_TOKEN: the token requests carry)
  nodes                          nodes, their region, zone, state and replicas
  apps                           apps, their placement, versions and what failure they survive
  status <app> [--watch]         one app: target and actual replicas, versions, recent steps
  history <app>                  every rollout of the app: version, who, when, outcome, reason
  abort <app>                    abort the app's rollout in progress (nothing changes anywhere)
  rollback <app> [--to <version>]  roll back to an earlier version's code (default: the one
                                 active before), staged and prepared everywhere like a deploy
  deploy <dir> --regions eu,us [--replicas 3] [--survive zone|region] [--name <app>]
               [--plan] [--plan-id <id>] [--allow-breaking] [--timeout 120s]
               [--validate-for 30s [--max-error-rate 0.01]]
                                 place (or re-place) an app and deploy its code; --plan only
                                 shows what would change and prints a plan id; --validate-for
                                 watches the new version's server errors after activation and
                                 rolls it back above --max-error-rate
  audit [--app <app>] [--actor <who>] [--since <time>] [--limit 200]
                                 the control plane's audit trail: who did what, and the outcome
  audit checkpoint [--out <file>]  the chain's head, to keep outside the cluster
  audit verify [--checkpoint <file>]  recompute the hash chain from the stored records (exit 1
                                 and the first bad record when it does not hold)
  drain <node> [--no-wait]       move the node's replicas away, then mark it drained
  undrain <node>                 let the node hold replicas again
  whoami                         the identity of the token in use, and its grants
  identities                     every identity (admin)
  identity create <id> [--kind user|service] [--description <text>] [--password-file <file>]
  identity show|disable|enable <id>
  grant <identity> <role> [--apps a,b|*] [--regions eu,us|*]   give a role (admin, operator,
                                 developer, reader, agent, or one the cluster defined)
  ungrant <identity> <role>
  roles                          the built-in roles and the cluster's own
  role define <name> --permissions '<json>' [--description <text>]  |  role remove <name>
  token issue <identity> [--apps] [--ops] [--regions] [--tables] [--expires 30d]
                                 a new token, printed once (the cluster keeps only its hash)
  token list | token revoke <id>
  token attenuate [--apps] [--ops] [--regions] [--tables] [--expires 1h]
                                 a narrower token derived from the one in use, offline
options: -o table|json (default table)
exit codes: 0 success, 1 refused or failed, 2 usage error, 3 control plane unreachable
`;

function usageError(message: string): never {
  throw new ExitError(2, `${message}\n\n${usage}`);
}

const list = (value: unknown): string => (Array.isArray(value) && value.length > 0 ? value.join(',') : '-');

function nodesTable(body: Json): string {
  const nodes = (body.nodes ?? []) as Json[];
  return table(
    ['NODE', 'REGION', 'ZONE', 'STATE', 'VOTER OF', 'LEARNER OF', 'URL'],
    nodes.map((n) => [String(n.id), String(n.region), String(n.zone ?? '-'), String(n.state), list(n.voterOf), list(n.learnerOf), String(n.httpUrl)]),
  );
}

function appsTable(body: Json): string {
  const apps = (body.apps ?? []) as Json[];
  return table(
    ['APP', 'REGIONS', 'REPLICAS', 'VERSION', 'VOTERS', 'LEARNERS', 'SURVIVES'],
    apps.map((a) => [String(a.name), list(a.regions), String(a.replicas), `${String(a.activeVersion)}/${String(a.desiredVersion)}`, list(a.voters), list(a.learners), a.shortfall === null ? String(a.survives) : `${String(a.survives)} (short: ${String(a.shortfall)})`]),
  );
}

function statusText(body: Json): string {
  const survival = body.survival as Json;
  const group = body.group as Json | null;
  const lines = [
    `app ${String(body.name)}: regions ${list(body.regions)}, ${String(body.replicas)} voters${body.survive === null ? '' : `, survive ${String(body.survive)}`}`,
    `version: active ${String(body.activeVersion)}, desired ${String(body.desiredVersion)}, staged ${String(body.stagedVersion ?? '-')}, previous ${String(body.previousVersion ?? '-')}${body.failure === null ? '' : ` (failed: ${String((body.failure as Json).reason)})`}`,
    `survives: ${String(survival.survives)} (${String(survival.reason)})${body.shortfall === null ? '' : `\nshortfall: ${String(body.shortfall)}`}`,
    `target: voters ${list((body.target as Json).voters)}; learners ${list((body.target as Json).learners)}`,
    group === null ? 'group: no leader reported yet' : `group: leader ${String(group.leader)} term ${String(group.term)} commit ${String(group.commit)}; voters ${list(group.voters)}; learners ${list(group.learners)}`,
    `converged: ${body.converged === true ? 'yes' : 'no'}`,
    body.rollout === null || body.rollout === undefined ? 'rollout: none in progress' : `rollout: version ${String((body.rollout as Json).version)} by ${String((body.rollout as Json).by)} since ${String((body.rollout as Json).startedAt)}`,
    '',
    table(
      ['REPLICA', 'ROLE', 'LEADER', 'APPLIED', 'SERVING', 'BUNDLE', 'ROLLOUT'],
      ((body.members ?? []) as Json[]).map((r) => [
        String(r.node),
        String(r.role),
        r.leader === true ? 'yes' : '',
        String(r.applied),
        r.servingVersion === null || r.servingVersion === undefined ? '-' : String(r.servingVersion),
        r.activeVersionHash === null ? '-' : String(r.activeVersionHash).slice(0, 12),
        r.rollout === null ? '-' : verdictText(r.rollout as Json),
      ]),
    ).trimEnd(),
  ];
  const steps = (body.steps ?? []) as Json[];
  if (steps.length > 0) {
    lines.push('', 'recent membership steps:');
    for (const step of steps.slice(-10)) lines.push(`  ${String(step.at)}  ${String(step.outcome).padEnd(7)}  ${String(step.detail)}`);
  }
  return lines.join('\n') + '\n';
}

function durationMs(flag: string, text: string): number {
  const match = /^(\d+)(ms|s|m)?$/.exec(text);
  if (match === null) usageError(`--${flag} must be a duration such as 30s or 2m, not '${text}'`);
  return Number(match[1]) * (match[2] === 'm' ? 60_000 : match[2] === 'ms' ? 1 : 1_000);
}

function fraction(flag: string, text: string): number {
  const value = Number(text);
  if (!/^\d*\.?\d+$/.test(text) || !(value >= 0 && value < 1)) usageError(`--${flag} must be a fraction from 0 up to 1 (0.01 is 1 %), not '${text}'`);
  return value;
}

/** The verdicts a rollout's outcome was decided on, where they differ from what was shown live
 *  (a rollout can end between two polls). */
function printDecidedVerdicts(status: Json, version: number, printed: ReadonlyMap<string, string>): void {
  const verdicts = (((status.history ?? []) as Json[]).find((rollout) => rollout.version === version)?.verdicts ?? null) as Record<string, Json> | null;
  if (verdicts === null) return;
  for (const [node, verdict] of Object.entries(verdicts)) {
    const line = verdictLine(node, verdict);
    if (printed.get(node) !== line) process.stdout.write(line);
  }
}

function verdictLine(node: string, verdict: Json): string {
  return `  ${node.padEnd(8)} ${verdictText(verdict)}${verdict.reason === undefined || verdict.reason === null ? '' : `: ${String(verdict.reason)}`}\n`;
}

/** "preparing (checks)", "prepared (checks 2/2)", "failed (schema)". */
function verdictText(verdict: Json): string {
  const checks = verdict.checks as Json | undefined;
  const detail = verdict.phase === 'prepared' ? (checks === undefined ? undefined : `checks ${String(checks.passed)}/${String(checks.total)}`) : (verdict.step as string | undefined);
  return detail === undefined ? String(verdict.phase) : `${String(verdict.phase)} (${detail})`;
}

function historyText(body: Json): string {
  const rows = [...((body.history ?? []) as Json[]), ...(body.rollout === null || body.rollout === undefined ? [] : [body.rollout as Json])];
  if (rows.length === 0) return `${String(body.app)}: no rollouts yet\n`;
  return table(
    ['VERSION', 'BUNDLE', 'BY', 'STARTED', 'OUTCOME', 'REASON'],
    rows.map((r) => [
      r.rollbackTo === null || r.rollbackTo === undefined ? String(r.version) : `${String(r.version)} (rollback to ${String(r.rollbackTo)})`,
      String(r.hash).slice(0, 12),
      String(r.by),
      String(r.startedAt),
      r.outcome === null ? 'in progress' : String(r.outcome),
      r.reason === null ? '' : String(r.reason),
    ]),
  );
}

function planText(body: Json): string {
  const changes = (body.changes ?? []) as Json[];
  const version = body.version as Json;
  const survival = body.survival as Json;
  const lines = [
    `plan for ${String(body.app)}${body.created === true ? ' (new app)' : ''}: plan id ${String(body.planId)}`,
    version.changes === true ? `code: version ${String(version.next)} (bundle ${String(version.hash).slice(0, 12)})` : 'code: unchanged',
    changes.length === 0 ? 'placement: unchanged' : table(['NODE', 'REGION', 'ZONE', 'FROM', 'TO'], changes.map((c) => [String(c.node), String(c.region), String(c.zone ?? '-'), String(c.from), String(c.to)])).trimEnd(),
    `survives: ${String(survival.survives)} (${String(survival.reason)})`,
    `apply it with: clusterctl deploy <dir> ... --plan-id ${String(body.planId)}`,
  ];
  return lines.join('\n') + '\n';
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(usage);
    return command === undefined ? 2 : 0;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: {
        control: { type: 'string' },
        output: { type: 'string', short: 'o', default: 'table' },
        watch: { type: 'boolean', default: false },
        regions: { type: 'string' },
        replicas: { type: 'string' },
        survive: { type: 'string' },
        name: { type: 'string' },
        plan: { type: 'boolean', default: false },
        'plan-id': { type: 'string' },
        'allow-breaking': { type: 'boolean', default: false },
        timeout: { type: 'string', default: '120s' },
        'no-wait': { type: 'boolean', default: false },
        to: { type: 'string' },
        'validate-for': { type: 'string' },
        'max-error-rate': { type: 'string' },
        app: { type: 'string' },
        actor: { type: 'string' },
        since: { type: 'string' },
        limit: { type: 'string' },
        checkpoint: { type: 'string' },
        out: { type: 'string' },
        'token-file': { type: 'string' },
        kind: { type: 'string' },
        description: { type: 'string' },
        'password-file': { type: 'string' },
        apps: { type: 'string' },
        ops: { type: 'string' },
        tables: { type: 'string' },
        expires: { type: 'string' },
        permissions: { type: 'string' },
      },
    });
  } catch (error) {
    usageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  const output = values.output;
  if (output !== 'table' && output !== 'json') usageError(`-o must be table or json, not '${output}'`);
  const baseUrls = (values.control ?? process.env.LOCKSTEP_CONTROL ?? 'http://127.0.0.1:9900')
    .split(',')
    .map((url) => url.trim().replace(/\/$/, ''))
    .filter((url) => url !== '');
  for (const baseUrl of baseUrls) if (!/^https?:\/\/[^/\s]+$/.test(baseUrl)) usageError(`--control must be a URL such as http://127.0.0.1:9900 (or several, comma-separated), not '${baseUrl}'`);
  if (baseUrls.length === 0) usageError('--control names no URL');
  let token = process.env.LOCKSTEP_TOKEN?.trim() || undefined;
  if (values['token-file'] !== undefined) {
    try {
      token = readTokenFile(values['token-file'], true);
    } catch (error) {
      if (error instanceof AuthFileError) usageError(`--token-file: ${error.message}`);
      throw error;
    }
  }
  const client = new ControlClient(baseUrls, token);
  const print = (body: Json, render: (body: Json) => string): void => {
    process.stdout.write(output === 'json' ? `${JSON.stringify(body, null, 2)}\n` : render(body));
  };
  const positional = (what: string): string => {
    if (positionals.length !== 1) usageError(`${command} needs exactly one ${what}`);
    return positionals[0] as string;
  };
  const timeoutMs = (() => {
    const match = /^(\d+)(ms|s|m)?$/.exec(values.timeout);
    if (match === null) usageError(`--timeout must be a duration such as 90s or 5m, not '${values.timeout}'`);
    return Number(match[1]) * (match[2] === 'm' ? 60_000 : match[2] === 'ms' ? 1 : 1_000);
  })();

  switch (command) {
    case 'nodes':
    case 'apps': {
      if (positionals.length > 0) usageError(`${command} takes no arguments`);
      const render = command === 'nodes' ? nodesTable : appsTable;
      let last = '';
      let stableSince = Date.now();
      for (;;) {
        const body = await client.expect('GET', `/v1/${command}`);
        const text = JSON.stringify(body[command]);
        if (text !== last) {
          print(body, render);
          last = text;
          stableSince = Date.now();
        }
        if (!values.watch || Date.now() - stableSince > 5_000) return 0;
        await sleep(1_000);
      }
    }
    case 'status': {
      const app = positional('app name');
      let last = '';
      for (;;) {
        const body = await client.expect('GET', `/v1/apps/${encodeURIComponent(app)}`);
        const text = JSON.stringify({ ...body, members: (body.members as Json[]).map((r) => ({ ...r, applied: 0 })) });
        if (text !== last) {
          print(body, statusText);
          last = text;
        }
        if (!values.watch) return 0;
        if (body.converged === true) return body.failure === null ? 0 : 1;
        await sleep(1_000);
      }
    }
    case 'audit':
      return runAudit(client, positionals, { app: values.app, actor: values.actor, since: values.since, limit: values.limit, checkpoint: values.checkpoint, out: values.out }, print);
    case 'history': {
      const app = positional('app name');
      const body = await client.expect('GET', `/v1/apps/${encodeURIComponent(app)}`);
      const history = { app, rollout: body.rollout, history: body.history };
      print(history, historyText);
      return 0;
    }
    case 'rollback': {
      const app = positional('app name');
      const to = values.to === undefined ? undefined : Number(values.to);
      if (to !== undefined && (!Number.isInteger(to) || to < 1)) usageError(`--to must be a version number, not '${values.to ?? ''}'`);
      const appPath = `/v1/apps/${encodeURIComponent(app)}`;
      const answer = await client.call('POST', `${appPath}/rollback`, to === undefined ? {} : { to });
      if (answer.status >= 300) throw new ExitError(1, `rollback of ${app} refused: ${problemText(answer)}\nnothing changed`);
      if (output === 'table') process.stdout.write(`rolling ${app} back to the code of version ${String(answer.body.rollbackTo)} (as version ${String(answer.body.version)})\n`);
      const printed = new Map<string, string>();
      const outcome = await followDeploy(
        client,
        { appPath },
        Number(answer.body.index),
        timeoutMs,
        () => undefined,
        (node, verdict) => {
          const line = verdictLine(node, verdict);
          printed.set(node, line);
          if (output === 'table') process.stdout.write(line);
        },
        Number(answer.body.version),
      );
      if (output === 'table') printDecidedVerdicts(outcome.status, Number(answer.body.version), printed);
      if (outcome.kind === 'converged') {
        print(outcome.status, statusText);
        return 0;
      }
      if (output === 'json') print(outcome.status, () => '');
      if (outcome.kind === 'refused') throw new ExitError(1, `the rollback of ${app} was aborted: ${outcome.reason}`);
      throw new ExitError(1, `${app} did not converge within the timeout; clusterctl status ${app} --watch follows it`);
    }
    case 'abort': {
      const app = positional('app name');
      const body = await client.expect('POST', `/v1/apps/${encodeURIComponent(app)}/abort`);
      print(body, () => `${app}: abort of the rollout in progress requested; clusterctl status ${app} --watch follows it\n`);
      return 0;
    }
    case 'deploy':
      return deploy(client, positional('app directory'), values, output, timeoutMs, print);
    case 'drain':
    case 'undrain': {
      const node = positional('node id');
      const body = await client.expect('POST', `/v1/nodes/${encodeURIComponent(node)}/${command}`);
      if (command === 'undrain' || values['no-wait']) {
        print(body, (b) => `${node}: drain ${String(b.drain)}\n`);
        return 0;
      }
      const deadline = Date.now() + timeoutMs;
      let lastState = '';
      while (Date.now() < deadline) {
        const nodes = ((await client.expect('GET', '/v1/nodes')).nodes ?? []) as Json[];
        const entry = nodes.find((n) => n.id === node);
        const state = `${String(entry?.state)} voter of ${list(entry?.voterOf)}, learner of ${list(entry?.learnerOf)}`;
        if (state !== lastState && output === 'table') process.stdout.write(`${node}: ${state}\n`);
        lastState = state;
        if (entry?.state === 'drained') {
          if (output === 'json') print(entry, () => '');
          return 0;
        }
        await sleep(500);
      }
      throw new ExitError(1, `${node} did not finish draining within ${values.timeout}; clusterctl status <app> shows what is moving`);
    }
    case 'whoami':
    case 'identities':
    case 'identity':
    case 'grant':
    case 'ungrant':
    case 'roles':
    case 'role':
    case 'token':
      return runIdentity(command, client, positionals, values, print);
    default:
      usageError(`unknown command '${command}'`);
  }
}

async function deploy(
  client: ControlClient,
  dir: string,
  values: {
    regions?: string | undefined;
    replicas?: string | undefined;
    survive?: string | undefined;
    name?: string | undefined;
    plan: boolean;
    'plan-id'?: string | undefined;
    'allow-breaking': boolean;
    watch: boolean;
    'validate-for'?: string | undefined;
    'max-error-rate'?: string | undefined;
  },
  output: string,
  timeoutMs: number,
  print: (body: Json, render: (body: Json) => string) => void,
): Promise<number> {
  if (values.regions === undefined) usageError('deploy needs --regions (for example --regions eu,us)');
  const regions = values.regions.split(',').map((r) => r.trim()).filter((r) => r !== '');
  const replicas = values.replicas === undefined ? 3 : Number(values.replicas);
  if (!Number.isInteger(replicas)) usageError(`--replicas must be an integer, not '${values.replicas ?? ''}'`);
  if (values.survive !== undefined && values.survive !== 'zone' && values.survive !== 'region') usageError(`--survive must be zone or region, not '${values.survive}'`);
  const request = await deployRequest(
    dir,
    {
      regions,
      replicas,
      survive: values.survive,
      allowBreaking: values['allow-breaking'],
      plan: values.plan,
      planId: values['plan-id'],
      validateForMs: values['validate-for'] === undefined ? undefined : durationMs('validate-for', values['validate-for']),
      maxErrorRate: values['max-error-rate'] === undefined ? undefined : fraction('max-error-rate', values['max-error-rate']),
    },
    values.name,
  );
  const { name } = request;
  const answer = await client.call('POST', `${request.appPath}/deploy`, request.body);
  if (answer.status >= 300) throw new ExitError(1, `deploy of ${name} refused: ${problemText(answer)}\nnothing changed`);
  if (values.plan) {
    print(answer.body, planText);
    return 0;
  }
  if (output === 'table') process.stdout.write(`deploying ${name}: version ${String(answer.body.version)}, target voters ${list((answer.body.target as Json).voters)}, learners ${list((answer.body.target as Json).learners)}\n`);
  // Follow the membership steps and the version until the app converges.
  const printed = new Map<string, string>();
  const outcome = await followDeploy(
    client,
    request,
    Number(answer.body.index),
    timeoutMs,
    (step) => {
      if (output === 'table') process.stdout.write(`  ${String(step.outcome).padEnd(7)}  ${String(step.detail)}\n`);
    },
    (node, verdict) => {
      const line = verdictLine(node, verdict);
      printed.set(node, line);
      if (output === 'table') process.stdout.write(line);
    },
    answer.body.rollout === true ? Number(answer.body.version) : undefined,
  );
  if (output === 'table' && answer.body.rollout === true) printDecidedVerdicts(outcome.status, Number(answer.body.version), printed);
  if (outcome.kind === 'converged') {
    print(outcome.status, statusText);
    return 0;
  }
  if (output === 'json') print(outcome.status, () => '');
  if (outcome.kind === 'refused') throw new ExitError(1, `version ${outcome.version} of ${name} ${/^validation failed/.test(outcome.reason) ? 'was rolled back' : 'was aborted, and the active version keeps serving'}: ${outcome.reason}`);
  throw new ExitError(1, `${name} did not converge within the timeout; clusterctl status ${name} --watch follows it`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ExitError) {
      process.stderr.write(`clusterctl: ${error.message}\n`);
      process.exit(error.code);
    }
    process.stderr.write(`clusterctl: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
