#!/usr/bin/env node
// p2pbak benchmark against restic and borg on the shared deterministic corpus.
// Usage: npm run bench   (env: BENCH_SCALE=1, BENCH_SEED=42, BENCH_TOOLS=p2pbak,restic,borg,
//                         BENCH_TIMEOUT_S, BENCH_KEEP=1 keeps temp repos, BENCH_STRICT=1 exits 1 on FAIL,
//                         BENCH_ROUNDS=3 rounds of the local steps (medians), BENCH_GROUP=0 skips the 5-node loopback group step,
//                         BENCH_SMALL=0 skips the small-commands step, BENCH_SMALL_ONLY=1 runs only the
//                         backups it needs (v1, v2) and it, BENCH_SMALL_RUNS=7,
//                         BENCH_SMALL_BEFORE=path of another build's bin/p2pbak.js (a before/after column),
//                         BENCH_MANY=N adds the many-small-files step (N files), BENCH_MANY_ONLY=1 runs it alone,
//                         P2PBAK_SHARED=path of the shared folder). See docs/benchmarks.md.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { duBytes, run, running, tail } from './lib/proc.mjs';
import { buildTable, judge, UNITS } from './lib/report.mjs';
import { BENCH_DIR, REPO_ROOT, ensureCorpus, ensureSystemTools, machineInfo, readConfig, warmUp } from './lib/setup.mjs';
import { ADAPTERS, p2pbakAt } from './lib/tools.mjs';
import { benchGroup, GROUP_TOOL } from './lib/group.mjs';
import { othersBusy, report, stepRecord, syncDisks } from './lib/steps.mjs';
import { verifyTree } from './lib/verify.mjs';
import { benchSmall, judgeSmall, smallTable } from './lib/small.mjs';
import { benchMany, judgeMany, manyTable, readManyConfig } from './lib/many.mjs';
import { combineRounds, roundsRange } from './lib/rounds.mjs';

const log = (msg) => console.log(`[bench] ${msg}`);
let tmp = null;
let keep = false;
/** Each tool's context (repository paths and environment), for the small-commands step after the backups. */
const contexts = new Map();

process.on('SIGINT', () => {
  for (const pgid of running) { try { process.kill(-pgid, 'SIGTERM'); } catch { /* gone */ } }
  if (tmp && !keep) rmSync(tmp, { recursive: true, force: true });
  console.error('[bench] interrupted');
  process.exit(130);
});
// Whatever still runs when the harness exits (daemons of the group step included) is killed.
process.on('exit', () => {
  for (const pgid of running) { try { process.kill(-pgid, 'SIGKILL'); } catch { /* gone */ } }
});

/** A timed step: sync first (untimed), note the load, run, then time a sync (reported, not in the table). */
async function timedStep(tool, label, c, cfg, bytes, warmDir) {
  const warmSeconds = warmDir ? warmUp([warmDir]) : null;
  syncDisks();
  const busy = await othersBusy();
  const r = await exec(tool, label, c, cfg.timeoutS, true);
  const s = stepRecord(r, bytes);
  s.syncAfterSeconds = syncDisks();
  s.cpuBusyBefore = busy;
  s.warmUpSeconds = warmSeconds;
  return { r, s };
}

async function exec(tool, label, c, timeoutS, measure) {
  const r = await run(c.cmd, c.args, { env: c.env, cwd: c.cwd ?? REPO_ROOT, okCodes: c.okCodes, timeoutS, measure });
  report(tool, label, r);
  return r;
}

/** The spread over the rounds of each local step, below the per-run lines. */
function logRounds(tools) {
  for (const [name, t] of Object.entries(tools)) {
    for (const [key, s] of Object.entries(t.steps ?? {})) {
      const secs = roundsRange(s, 'seconds', 2);
      const peaks = roundsRange(s, 'peakRssMiB', 0);
      if (secs) log(`${name}: ${key}: median ${s.seconds.toFixed(2)} s over ${s.rounds.length} rounds (${secs} s), peak RSS ${peaks ?? '?'} MiB (the largest counts)`);
    }
  }
}

function sizes(adapter, ctx) {
  const d = adapter.repoDirs(ctx);
  const extra = {};
  for (const [k, p] of Object.entries(d.extra)) extra[k] = duBytes(p);
  return { repo: duBytes(d.repo), extra };
}

async function benchTool(name, cfg, corpus, dir) {
  const a = ADAPTERS[name];
  if (!a) return { skipped: true, reason: `unknown tool ${name}` };
  const probe = a.probe();
  if (!probe.ok) {
    log(`${name}: skipped (${probe.reason})`);
    return { skipped: true, reason: probe.reason };
  }
  log(`${name}: ${probe.version.split('\n')[0]}`);
  const res = { version: probe.version, settings: a.settings, steps: {}, sizes: {} };
  const ctx = a.context(dir);
  contexts.set(name, ctx);
  res.warmUpSeconds = warmUp([corpus.v1, corpus.v2]);
  log(`${name}: warm-up read of v1 and v2 took ${res.warmUpSeconds.toFixed(1)} s`);

  const init = await exec(name, 'init', a.init(ctx), cfg.timeoutS, false);
  res.init = { ok: init.ok, seconds: init.seconds };
  if (!init.ok) {
    res.skipped = true;
    res.reason = `init failed: ${init.error ?? `exit ${init.code}`}`;
    res.initStderr = tail(init.stderr);
    return res;
  }
  if (name === 'p2pbak') {
    try {
      const j = JSON.parse(init.stdout); // never keep or print the recovery phrase
      res.init.userId = j.userId;
      res.init.peerId = j.peerId;
    } catch { res.init.note = 'init --json output was not JSON'; }
  }
  if (a.extraInfo) res.info = a.extraInfo(ctx);

  const backups = [
    ['v1', corpus.v1, corpus.stats.v1.apparentBytes, 'backup of v1 (first)'],
    ['v2', corpus.v2, corpus.stats.v2.apparentBytes, 'backup of v2 (new path, reads all files)'],
    ['v2again', corpus.v2, corpus.stats.v2.apparentBytes, 'backup of v2 again (no change)'],
  ].filter(([key]) => !(cfg.smallOnly && key === 'v2again'));
  for (const [key, path, bytes, label] of backups) {
    const before = sizes(a, ctx);
    const { r, s } = await timedStep(name, label, a.backup(ctx, path, key), cfg, bytes, path);
    const after = sizes(a, ctx);
    s.repoBefore = before.repo;
    s.repoAfter = after.repo;
    s.repoGrew = before.repo !== null && after.repo !== null ? after.repo - before.repo : null;
    s.extraGrew = Object.fromEntries(Object.keys(after.extra).map((k) => [k,
      after.extra[k] !== null && before.extra[k] !== null ? after.extra[k] - before.extra[k] : null]));
    s.extraAfter = after.extra;
    s.toolSummary = r.ok ? a.summary(r.stdout) : null;
    res.steps[key] = s;
    log(`${name}: ${label}: ${r.ok ? 'ok' : 'FAILED'} in ${r.seconds.toFixed(2)} s` +
      (s.mbps ? `, ${s.mbps.toFixed(1)} MB/s` : '') +
      (s.peakRssMiB !== null ? `, peak RSS ${s.peakRssMiB.toFixed(0)} MiB` : '') +
      (s.repoGrew !== null ? `, repo +${(s.repoGrew / UNITS.MB).toFixed(2)} MB` : ''));
  }

  if (cfg.smallOnly) {
    res.sizes.final = sizes(a, ctx);
    return res;
  }
  if (a.snapshots) {
    const r = await exec(name, 'snapshots --json', a.snapshots(ctx), cfg.timeoutS, true);
    res.snapshotsStep = stepRecord(r, null);
    if (r.peakRssKiB !== null) log(`${name}: snapshots --json (untimed step): peak RSS ${(r.peakRssKiB / 1024).toFixed(0)} MiB`);
    if (r.ok) {
      try {
        const list = JSON.parse(r.stdout);
        res.snapshots = Array.isArray(list) ? list.map((x) => ({ id: x.id, time: x.time, paths: x.paths })) : list;
      } catch { res.snapshots = 'output was not JSON'; }
    }
  }

  const target = join(dir, `restore-${name}`);
  mkdirSync(target, { recursive: true });
  const { r: rr, s: rs } = await timedStep(name, 'restore of v2 (latest)', a.restore(ctx, target), cfg,
    corpus.stats.v2.apparentBytes);
  res.steps.restore = rs;
  log(`${name}: restore of v2: ${rr.ok ? 'ok' : 'FAILED'} in ${rr.seconds.toFixed(2)} s` +
    (res.steps.restore.mbps ? `, ${res.steps.restore.mbps.toFixed(1)} MB/s` : '') +
    (res.steps.restore.peakRssMiB !== null ? `, peak RSS ${res.steps.restore.peakRssMiB.toFixed(0)} MiB` : ''));
  const root = a.restoredRoot(target, corpus.v2);
  if (rr.ok && !existsSync(root)) {
    res.steps.restore.ok = false;
    res.steps.restore.error = `restored tree not found at ${root}`;
    res.steps.restore.mbps = null;
    console.error(`[bench] ${name}: restore reported success but ${root} does not exist`);
  }
  if (name === 'p2pbak' && res.steps.restore.ok) {
    log(`${name}: verifying restore against v2 (diff -r, find -printf listing)`);
    const v = verifyTree(corpus.v2, root);
    res.verify = v;
    log(`${name}: verify: ${v.ok ? 'byte-exact, metadata equal' : 'MISMATCH'} (${v.entries} entries)`);
    for (const p of v.problems) console.error(`  verify| ${p}`);
    for (const i of v.info) log(`  verify (info)| ${i}`);
  }
  if (!keep) rmSync(target, { recursive: true, force: true });
  res.sizes.final = sizes(a, ctx);
  return res;
}

function notesText(cfg, corpus, results, setupNotes) {
  const lines = [
    `corpus: ${corpus.dir} (seed ${cfg.seed}, scale ${cfg.scaleText}, ${corpus.reused ? 'reused from cache' : `built in ${corpus.seconds.toFixed(0)} s`})`,
    `  v1: ${corpus.stats.v1.files} files, ${corpus.stats.v1.dirs} dirs, ${corpus.stats.v1.symlinks} symlinks, ${(corpus.stats.v1.apparentBytes / UNITS.MB).toFixed(1)} MB apparent`,
    `  v2: ${corpus.stats.v2.files} files, ${corpus.stats.v2.dirs} dirs, ${corpus.stats.v2.symlinks} symlinks, ${(corpus.stats.v2.apparentBytes / UNITS.MB).toFixed(1)} MB apparent`,
    'MB = 10^6 bytes, MiB = 2^20 bytes. MB/s = apparent bytes (du -sb) of the tree / wall seconds.',
    'Each tool backs up v1 then v2 at their own absolute paths into one repo. v2\'s first backup has a new path,',
    '  so no tool finds a parent / files-cache hit: it reads every file of v2 and dedups against v1.',
    '  "v2 again" is the second backup of the same v2 path (no change; parent snapshot / files cache used).',
    'Repo growth = du -sb of the repo dir after minus before. "store grew": p2pbak store/ (its index is a local cache, like restic\'s and borg\'s caches, not counted); "home/repo grew": p2pbak\'s whole P2PBAK_HOME;',
    '  restic: the repo dir (its cache dir is separate and not counted); borg: the repo dir (BORG_BASE_DIR not counted).',
    'Peak RSS = max(GNU time %M of the largest process, sum of RSS over the process tree sampled every 100 ms).',
    'Page cache: nothing is dropped; before each tool every file of v1 and v2 is read once, and before each backup',
    '  step its source tree is read once more (untimed), so every tool sees a warm cache.',
    '`sync` runs (untimed) before every timed step, so no step pays for write-back of an earlier one; then the harness',
    '  idles 1 s and records how busy the CPUs were (other processes), to flag noisy runs.',
    `Machine: ${results.machine.cpus} CPUs (${results.machine.cpuModel}), ${results.machine.memGiB} GiB RAM, ` +
      `${results.machine.os}, ${results.machine.kernel}, Node ${results.machine.node}; ` +
      `repos in ${tmp} (${results.machine.tmpFilesystem}). Tools run one after another, not in parallel.`,
    'Only p2pbak\'s restore is verified (diff -r + type/mode/mtime(s)/symlink listing, every round); restic/borg restores are only timed.',
    `Local steps: ${cfg.rounds} round(s), the tools taking turns, each round in fresh repos. A step's seconds, MB/s and repo growth are those of`,
    '  its median round; its peak RSS is the largest of all rounds. The small commands and the group step run once, after the last round.',
  ];
  const g = results.tools[GROUP_TOOL];
  if (g && !g.skipped) {
    lines.push(
      `${GROUP_TOOL}: v1 backed up from the publisher to a 5-node loopback group (4 persisters), then restored with one`,
      '  persister that holds shares stopped; the restore is verified against v1 like the local one. Its peak RSS is the',
      '  publisher daemon\'s peak (VmHWM reset before the step, or sampled tree RSS if larger) + the CLI client\'s; the',
      '  persisters\' figures are separate rows. "group÷restic" compares with restic\'s LOCAL figures of this run (its',
      '  v1 backup; its restore is of v2, about the size of v1, so only MB/s and RSS get a ratio there).');
    if (g.scheme) lines.push(`  scheme ${g.scheme.k}+${g.scheme.m}; held on persisters / bytes added = ${g.held?.ratio?.toFixed(3) ?? '—'} (expected ≈ ${g.held?.expectedRatio?.toFixed(3) ?? '—'})`);
    if (g.setupProblems?.length > 0) lines.push(`  setup: ${g.setupProblems.length} join attempt(s) failed and were retried with a new invite (setupProblems in the JSON)`);
    if (g.error) lines.push(`  ${GROUP_TOOL} FAILED: ${g.error.split('\n')[0]}`);
  }
  for (const [name, r] of Object.entries(results.tools)) {
    if (r.skipped) lines.push(`${name}: SKIPPED - ${r.reason}`);
    else lines.push(`${name}: ${r.version.split('\n')[0]} - ${r.settings}`);
  }
  for (const n of setupNotes) lines.push(`setup: ${n}`);
  const busy = Object.values(results.tools).flatMap((r) => Object.values(r.steps ?? {}))
    .map((st) => st.cpuBusyBefore).filter((x) => typeof x === 'number');
  const maxBusy = busy.length > 0 ? Math.max(...busy) : 0;
  if (maxBusy > 0.2) {
    lines.push(`WARNING: other processes kept up to ${(maxBusy * 100).toFixed(0)} % of all CPUs busy in the 1 s ` +
      'before a step: timings are noisy; rerun on an idle machine.');
  }
  return lines.join('\n');
}

/** BENCH_MANY_ONLY=1: only the many-small-files step (no corpus, no other step). */
async function mainManyOnly(cfg, mcfg) {
  const setupNotes = ensureSystemTools(mcfg.tools);
  for (const n of setupNotes) log(`setup: ${n}`);
  tmp = mkdtempSync(join(os.tmpdir(), 'p2pbak-bench-'));
  const startedAt = new Date();
  const results = { startedAt: startedAt.toISOString(), config: { seed: cfg.seed, timeoutS: cfg.timeoutS, many: mcfg },
    machine: machineInfo(tmp), p2pbakVersion: JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version, setupNotes };
  results.many = await benchMany({ mcfg, seed: cfg.seed, tmpRoot: tmp, timeoutS: cfg.timeoutS, adapters: ADAPTERS });
  printMany(results);
  finish(results, startedAt, cfg);
}

function printMany(results) {
  const m = results.many;
  results.manyTable = manyTable(m);
  results.verdicts = [...(results.verdicts ?? []), ...judgeMany(m)];
  console.log('');
  console.log(`${results.manyTable}\n(${m.n} files in ${m.dirs} directories, ${(m.apparentBytes / 1e6).toFixed(1)} MB apparent, ` +
    `generated in ${m.generateSeconds.toFixed(0)} s; find '${m.pattern}'; load average ${m.loadAverageBefore.map((x) => x.toFixed(1)).join(' ')} ` +
    `before, ${m.loadAverageAfter.map((x) => x.toFixed(1)).join(' ')} after)`);
  console.log('');
  for (const v of judgeMany(m)) console.log(`${v.verdict.padEnd(4)}  ${v.bar}: ${v.detail}`);
}

function finish(results, startedAt, cfg) {
  results.finishedAt = new Date().toISOString();
  mkdirSync(BENCH_DIR, { recursive: true });
  const file = join(BENCH_DIR, `results-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nresults written to ${file}`);
  if (keep) console.log(`temp dir kept: ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
  if (cfg.strict && results.verdicts.some((v) => v.verdict === 'FAIL')) process.exitCode = 1;
}

/**
 * BENCH_COMPARE=FILE: the results JSON of an earlier run at another scale, whose peaks the memory bars
 * compare with this run's (issue 13, item 2: within 10 % at 4× the corpus).
 */
function readCompared(results) {
  const file = process.env.BENCH_COMPARE;
  if (!file) return null;
  try {
    const previous = JSON.parse(readFileSync(file, 'utf8'));
    results.compared = { file, scale: previous.config?.scale ?? null, startedAt: previous.startedAt ?? null };
    return { scale: results.config.scale, previous };
  } catch (e) {
    console.error(`[bench] BENCH_COMPARE=${file}: cannot read it (${e instanceof Error ? e.message : String(e)}); no comparison across scales`);
    return null;
  }
}

async function main() {
  const cfg = readConfig();
  keep = cfg.keep;
  const mcfg = readManyConfig();
  if (mcfg?.only) return await mainManyOnly(cfg, mcfg);
  log(`scale ${cfg.scaleText}, seed ${cfg.seed}, tools ${cfg.tools.join(',')}, per-command timeout ${cfg.timeoutS} s`);
  const setupNotes = ensureSystemTools(cfg.tools);
  for (const n of setupNotes) log(`setup: ${n}`);
  const corpus = ensureCorpus(cfg);
  log(`corpus ready: ${corpus.dir}`);
  tmp = mkdtempSync(join(os.tmpdir(), 'p2pbak-bench-'));
  const startedAt = new Date();
  const results = {
    startedAt: startedAt.toISOString(),
    config: { scale: cfg.scale, seed: cfg.seed, tools: cfg.tools, group: cfg.group, timeoutS: cfg.timeoutS,
      small: cfg.small, smallOnly: cfg.smallOnly, smallRuns: cfg.smallRuns, rounds: cfg.rounds },
    machine: machineInfo(tmp),
    p2pbakVersion: JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version,
    corpus: { dir: corpus.dir, reused: corpus.reused, buildSeconds: corpus.seconds, ...corpus.stats },
    setupNotes,
    tools: {},
  };
  // the tools take turns, round after round, each round in fresh repositories (BENCH_ROUNDS)
  const perTool = new Map(cfg.tools.map((name) => [name, []]));
  for (let round = 1; round <= cfg.rounds; round++) {
    const dir = join(tmp, `round-${round}`);
    mkdirSync(dir, { recursive: true });
    if (cfg.rounds > 1) log(`round ${round} of ${cfg.rounds}`);
    for (const name of cfg.tools) {
      try {
        perTool.get(name).push(await benchTool(name, cfg, corpus, dir));
      } catch (e) {
        console.error(`[bench] ${name}: harness error: ${e instanceof Error ? e.stack : String(e)}`);
        perTool.get(name).push({ skipped: true, reason: `harness error: ${String(e)}` });
      }
    }
    // the small-commands step works on the last round's repositories; earlier ones go
    if (round < cfg.rounds && !keep) rmSync(dir, { recursive: true, force: true });
  }
  for (const [name, rounds] of perTool) results.tools[name] = combineRounds(rounds);
  if (cfg.rounds > 1) logRounds(results.tools);
  if (cfg.small) {
    const columns = cfg.tools.filter((t) => ADAPTERS[t] && !results.tools[t]?.skipped && results.tools[t]?.steps?.v2?.ok)
      .map((t) => ({ name: t, adapter: ADAPTERS[t], ctx: contexts.get(t) }));
    // BENCH_SMALL_BEFORE=…/bin/p2pbak.js of another build: a column for it, on the same home, alternating with this one
    const before = process.env.BENCH_SMALL_BEFORE;
    const p = columns.find((c) => c.name === 'p2pbak');
    if (before && p) columns.splice(1, 0, { name: 'p2pbak-before', adapter: p2pbakAt(before, 'p2pbak-before'), ctx: p.ctx });
    try {
      results.small = await benchSmall({ columns, corpus, runs: cfg.smallRuns, tmpRoot: tmp, timeoutS: cfg.timeoutS,
        daemon: cfg.smallDaemon });
    } catch (e) {
      console.error(`[bench] small commands: harness error: ${e instanceof Error ? e.stack : String(e)}`);
      results.small = { error: String(e) };
    }
  } else {
    log('small commands: skipped (BENCH_SMALL=0)');
  }
  if (cfg.group) {
    log(`${GROUP_TOOL}: 5-node loopback group (BENCH_GROUP=0 skips it)`);
    try {
      results.tools[GROUP_TOOL] = await benchGroup({ tmpRoot: tmp, cfg, corpus, keep });
    } catch (e) {
      console.error(`[bench] ${GROUP_TOOL}: harness error: ${e instanceof Error ? e.stack : String(e)}`);
      results.tools[GROUP_TOOL] = { skipped: true, reason: `harness error: ${String(e)}` };
    }
  } else {
    log(`${GROUP_TOOL}: skipped (BENCH_GROUP=0${cfg.tools.includes('p2pbak') ? '' : ' or p2pbak not in BENCH_TOOLS'})`);
  }
  const toolNames = cfg.tools.filter((t) => ADAPTERS[t]);
  const table = buildTable(results.tools, toolNames);
  const verdicts = [...judge(results.tools, readCompared(results)), ...(results.small?.tools ? judgeSmall(results.small) : [])];
  results.verdicts = verdicts;
  results.finishedAt = new Date().toISOString();
  console.log('');
  console.log(notesText(cfg, corpus, results, setupNotes));
  console.log('');
  console.log(table);
  console.log('');
  if (results.small?.tools) {
    const s = results.small;
    console.log(`${smallTable(s)}\n(${s.runs} runs each, wall s and CPU s (user+sys); load average ` +
      `${s.loadAverageBefore.map((x) => x.toFixed(1)).join(' ')} before, ${s.loadAverageAfter.map((x) => x.toFixed(1)).join(' ')} after; ` +
      `ls of ${s.targets.dirEntries} entries, one-file restore of ${s.targets.fileBytes} B; KDFs: p2pbak ` +
      `${JSON.stringify(s.kdf.p2pbak ?? null)}, restic ${JSON.stringify(s.kdf.restic ?? null)})`);
    console.log('');
    results.smallTable = smallTable(s);
  }
  for (const v of verdicts) console.log(`${v.verdict.padEnd(4)}  ${v.bar}: ${v.detail}`);
  results.table = table;
  if (mcfg) {
    log(`many small files: ${mcfg.n} files (BENCH_MANY)`);
    try {
      results.many = await benchMany({ mcfg, seed: cfg.seed, tmpRoot: tmp, timeoutS: cfg.timeoutS, adapters: ADAPTERS });
      printMany(results);
    } catch (e) {
      console.error(`[bench] many: harness error: ${e instanceof Error ? e.stack : String(e)}`);
      results.many = { error: String(e) };
    }
  }
  finish(results, startedAt, cfg);
}

main().catch((e) => {
  console.error(`[bench] fatal: ${e instanceof Error ? e.stack : String(e)}`);
  if (tmp && !keep) rmSync(tmp, { recursive: true, force: true });
  process.exitCode = 1;
});
