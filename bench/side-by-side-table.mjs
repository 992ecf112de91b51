// Reads the results of bench/side-by-side.sh and prints one markdown table: each case's req/s
// and p50 per run, and Lockstep's ratio to its peer in the same round.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [mode, dir] = process.argv.slice(2);
const read = (path) => (existsSync(path) ? JSON.parse(readFileSync(path, 'utf8').trim().split('\n').pop()) : undefined);
const rps = (r) => (r === undefined ? undefined : Math.round(r.rps_avg));
const p50 = (r) => r?.lat_ms?.p50;
const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? '' : `${(a / b).toFixed(2)}x`);
const cell = (r) => (r === undefined ? 'n/a' : `${rps(r)} (p50 ${p50(r)} ms)`);

if (mode === 'cluster') {
  const runs = readdirSync(dir).filter((name) => /^r\d+-c\d+-etcd$/.test(name)).map((name) => name.replace(/-etcd$/, '')).sort();
  const cases = [
    ['PUT via leader', 'etcd3-put-via-leader', 'lockstep3-put-via-leader'],
    ['PUT via follower', 'etcd3-put-via-follower', 'lockstep3-put-via-follower'],
    ['linearizable read via leader', 'etcd3-range-linearizable-via-leader', 'lockstep3-get-linearizable-via-leader'],
    ['linearizable read via follower', 'etcd3-range-linearizable-via-follower', 'lockstep3-get-linearizable-via-follower'],
  ];
  console.log('| run | connections | case | etcd 3.4 req/s | Lockstep req/s | Lockstep / etcd (leader PUT for PUTs) |');
  console.log('|---|---:|---|---:|---:|---:|');
  for (const run of runs) {
    const [round, c] = run.split('-');
    const etcdLeaderPut = read(join(dir, `${run}-etcd`, 'etcd3-put-via-leader.json'));
    for (const [label, etcdName, lockstepName] of cases) {
      const etcd = read(join(dir, `${run}-etcd`, `${etcdName}.json`));
      const lockstep = read(join(dir, `${run}-lockstep`, `${lockstepName}.json`));
      const base = label.startsWith('PUT') ? etcdLeaderPut : etcd;
      console.log(`| ${round} | ${c.slice(1)} | ${label} | ${cell(etcd)} | ${cell(lockstep)} | ${ratio(rps(lockstep), rps(base))} |`);
    }
  }
} else {
  const runs = readdirSync(dir).filter((name) => /^r\d+$/.test(name)).sort();
  const cases = [
    ['GET by random id', 'harper-get-random-id', 'project-get-random-id'],
    ['PUT random id', 'harper-put-random-id', 'project-put-random-id'],
    ['POST create', 'harper-post', 'project-post'],
  ];
  console.log('| run | case | node:http ceiling | Harper 4.7 req/s | Lockstep dev req/s | Lockstep / Harper |');
  console.log('|---|---|---:|---:|---:|---:|');
  for (const run of runs) {
    const files = readdirSync(join(dir, run));
    const ceilingFile = files.find((f) => f.startsWith('ceiling-node-http-1proc') && f.endsWith('.json') && !f.includes('wrk'));
    const ceiling = ceilingFile === undefined ? undefined : read(join(dir, run, ceilingFile));
    for (const [label, harperName, projectName] of cases) {
      const harperFile = files.find((f) => f.startsWith(harperName) && f.endsWith('.json'));
      const projectFile = files.find((f) => f.startsWith(projectName) && f.endsWith('.json'));
      const harper = harperFile === undefined ? undefined : read(join(dir, run, harperFile));
      const project = projectFile === undefined ? undefined : read(join(dir, run, projectFile));
      console.log(`| ${run} | ${label} | ${rps(ceiling) ?? 'n/a'} | ${cell(harper)} | ${cell(project)} | ${ratio(rps(project), rps(harper))} |`);
    }
  }
}
