// The many-small-files step (issue 13, item 4): a generated tree of N small files (0-8 KiB, some
// duplicates, about N/250 directories, deterministic from a seed), and for each tool on a local
// repository: the first backup, a no-change backup, a backup after editing 0.1 % of the files, further
// backups of small edits until the repository holds BENCH_MANY_SNAPSHOTS snapshots, `find` of a name
// pattern over all of them, and a full restore, verified. Run by `npm run bench` with BENCH_MANY=N, or
// alone with BENCH_MANY_ONLY=1. See docs/benchmarks.md, "One million small files".
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { startDaemon, stopDaemon } from './daemons.mjs';
import { duBytes, run, tail } from './proc.mjs';
import { REPO_ROOT, warmUp } from './setup.mjs';
import { othersBusy, report, stepRecord, syncDisks } from './steps.mjs';
import { verifyTree } from './verify.mjs';

/** Item 4's bars: the CLI's peak RSS for a local backup or restore, `find` wall seconds, no-change ÷ restic. */
export const MANY_BARS = { peakRssMiBMax: 200, findSecondsMax: 1, noChangeRatioMax: 1 };

const log = (msg) => console.log(`[bench] many: ${msg}`);
const FILES_PER_DIR = 250;
const EXTS = ['txt', 'log', 'json', 'c', 'md', 'csv', 'html', 'py'];
/** Every REPORT_EVERY-th file is `report-<i>.pdf`: what `find` looks for (N / 10007 hits per snapshot). */
const REPORT_EVERY = 10007;
export const FIND_PATTERN = 'report';
const COMMON = 64; // contents shared by the duplicate files
const POOL = 16 << 20;

const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2;
};

/** splitmix32: a small, fast, seedable PRNG; returns a function giving floats in [0, 1). */
function rng(...seeds) {
  let s = 0x9e3779b9;
  for (const x of seeds) s = Math.imul(s ^ (x >>> 0), 0x85ebca6b) + 0x6b43a9b5 | 0;
  return () => {
    s = s + 0x9e3779b9 | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

/** The tree's shape and contents, all derived from (seed, n). */
export class ManyTree {
  constructor(root, n, seed) {
    this.root = root;
    this.n = n;
    this.seed = seed;
    this.dirs = Math.max(1, Math.ceil(n / FILES_PER_DIR));
    this.top = Math.max(1, Math.ceil(Math.sqrt(this.dirs)));
    const r = rng(seed, 1);
    // a random pool (incompressible files) and a text pool (compressible), sliced at random offsets
    this.random = Buffer.allocUnsafe(POOL);
    for (let i = 0; i < POOL; i += 4) this.random.writeUInt32LE((r() * 4294967296) >>> 0, i);
    const words = ['alpha', 'beta', 'gamma', 'delta', 'backup', 'restore', 'snapshot', 'tree', 'file', 'pack', 'the', 'a', 'of',
      'select', 'from', 'where', 'user', 'value', 'index', 'report', 'error', 'info', '2026-11-22', 'id', '42', '\n'];
    const parts = [];
    let len = 0;
    while (len < POOL) { const w = words[(r() * words.length) | 0]; parts.push(w); len += w.length + 1; }
    this.text = Buffer.from(parts.join(' ')).subarray(0, POOL);
    this.common = Array.from({ length: COMMON }, (_, k) => this.slice(rng(seed, 2, k)));
    /** files whose content was edited since generation (index -> edit round), to reset them */
    this.edited = new Map();
  }

  slice(r) {
    const size = r() < 0.05 ? 0 : 1 + Math.floor(r() * 8192);
    const pool = r() < 0.5 ? this.text : this.random;
    const off = Math.floor(r() * (pool.length - size));
    return pool.subarray(off, off + size);
  }

  dirOf(i) {
    const d = Math.floor(i / FILES_PER_DIR);
    return join(this.root, `t${String(d % this.top).padStart(3, '0')}`, `d${String(d).padStart(5, '0')}`);
  }

  nameOf(i) {
    return i % REPORT_EVERY === 0 ? `report-${i}.pdf` : `f${i}.${EXTS[i % EXTS.length]}`;
  }

  pathOf(i) { return join(this.dirOf(i), this.nameOf(i)); }

  /** The file's content as generated: 5 % empty, 10 % one of 64 shared contents, the rest slices of a pool. */
  content(i) {
    const r = rng(this.seed, 3, i);
    if (r() < 0.1) return this.common[(r() * COMMON) | 0];
    return this.slice(r);
  }

  /** The content after edit round `round`: new bytes of about the same size. */
  editedContent(i, round) {
    const r = rng(this.seed, 4 + round, i);
    const base = this.content(i);
    const size = Math.max(1, base.length + Math.floor(r() * 64) - 16);
    const off = Math.floor(r() * (this.text.length - size));
    return this.text.subarray(off, off + size);
  }

  /** Writes the whole tree (one process, synchronous writes: about 20-50 µs a file). */
  generate() {
    rmSync(this.root, { recursive: true, force: true });
    let lastDir = null;
    for (let i = 0; i < this.n; i++) {
      const dir = this.dirOf(i);
      if (dir !== lastDir) { mkdirSync(dir, { recursive: true }); lastDir = dir; }
      writeFileSync(this.pathOf(i), this.content(i));
    }
    this.edited.clear();
  }

  /** Edit `count` files chosen by (seed, round), the same files for every tool. Returns their paths. */
  edit(round, count) {
    const r = rng(this.seed, 1000 + round);
    const paths = [];
    for (let k = 0; k < count; k++) {
      const i = Math.floor(r() * this.n);
      const p = this.pathOf(i);
      const fd = openSync(p, 'w');
      try { writeSync(fd, this.editedContent(i, round)); } finally { closeSync(fd); }
      this.edited.set(i, round);
      paths.push(p);
    }
    return paths;
  }

  /** Puts every edited file back to its generated content (before the next tool starts). */
  reset() {
    for (const i of this.edited.keys()) writeFileSync(this.pathOf(i), this.content(i));
    this.edited.clear();
  }
}

/** Configuration of the step from the environment. */
export function readManyConfig() {
  const text = process.env.BENCH_MANY;
  if (text === undefined || text === '' || text === '0') return null;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_MANY must be a positive integer (a number of files), got ${text}`);
  const snapshots = Number(process.env.BENCH_MANY_SNAPSHOTS ?? 100);
  if (!Number.isInteger(snapshots) || snapshots < 3) throw new Error(`BENCH_MANY_SNAPSHOTS must be an integer >= 3, got ${process.env.BENCH_MANY_SNAPSHOTS}`);
  const findRuns = Number(process.env.BENCH_MANY_FIND_RUNS ?? 5);
  return {
    n, snapshots, findRuns,
    only: process.env.BENCH_MANY_ONLY === '1',
    tools: (process.env.BENCH_MANY_TOOLS ?? process.env.BENCH_TOOLS ?? 'p2pbak,restic,borg').split(',').map((s) => s.trim()).filter(Boolean),
    // p2pbak's extra snapshots: `full` backups (as restic's), or `changed-from` (continuous mode: the edited paths only)
    extraMode: process.env.BENCH_MANY_EXTRA === 'changed-from' ? 'changed-from' : 'full',
    daemon: process.env.BENCH_MANY_DAEMON !== '0',
    keep: process.env.BENCH_KEEP === '1',
  };
}

async function timed(tool, label, c, timeoutS) {
  syncDisks();
  const busy = await othersBusy();
  const r = await run(c.cmd, c.args, { env: c.env, cwd: c.cwd ?? REPO_ROOT, okCodes: c.okCodes, timeoutS, measure: true });
  report(tool, label, r);
  const s = stepRecord(r, null);
  s.cpuBusyBefore = busy;
  return { r, s };
}

const fmtS = (s) => `${s.ok ? 'ok' : 'FAILED'} in ${s.seconds.toFixed(2)} s` +
  (s.cpuSeconds !== null ? ` (CPU ${s.cpuSeconds.toFixed(1)} s)` : '') +
  (s.peakRssMiB !== null ? `, peak RSS ${s.peakRssMiB.toFixed(0)} MiB` : '');

/** `find` runs: one untimed, then `runs` timed; median wall and CPU seconds. */
async function findSeries(tool, c, runs, timeoutS) {
  const rs = [];
  for (let i = 0; i <= runs; i++) {
    const r = await run(c.cmd, c.args, { env: c.env, cwd: c.cwd ?? REPO_ROOT, okCodes: c.okCodes, timeoutS, measure: true });
    report(tool, 'find', r);
    if (i > 0) rs.push({ ok: r.ok, seconds: r.seconds, cpuSeconds: r.cpuUserSeconds === null ? null : r.cpuUserSeconds + r.cpuSystemSeconds,
      peakRssMiB: r.peakRssKiB === null ? null : r.peakRssKiB / 1024, lines: r.stdout.split('\n').filter(Boolean).length,
      stderrTail: r.ok ? undefined : tail(r.stderr) });
  }
  const good = rs.filter((x) => x.ok);
  return { ok: good.length === rs.length && rs.length > 0, runs: rs, medianSeconds: median(good.map((x) => x.seconds)),
    medianCpuSeconds: median(good.map((x) => x.cpuSeconds)), medianPeakRssMiB: median(good.map((x) => x.peakRssMiB)),
    outputLines: good[0]?.lines ?? null };
}

async function benchManyTool(name, adapter, tree, mcfg, tmpRoot, timeoutS) {
  const probe = adapter.probe();
  if (!probe.ok) { log(`${name}: skipped (${probe.reason})`); return { skipped: true, reason: probe.reason }; }
  const dir = mkdtempSync(join(tmpRoot, `many-${name}-`));
  const ctx = adapter.context(dir);
  const res = { version: probe.version.split('\n')[0], steps: {} };
  tree.reset();
  res.warmUpSeconds = warmUp([tree.root]);
  const init = await run(adapter.init(ctx).cmd, adapter.init(ctx).args, { env: ctx.env, cwd: REPO_ROOT, okCodes: [0], timeoutS });
  report(name, 'init', init);
  if (!init.ok) { rmSync(dir, { recursive: true, force: true }); return { skipped: true, reason: `init failed: ${init.error ?? `exit ${init.code}`}` }; }
  const step = async (key, label, c) => {
    const { r, s } = await timed(name, label, c, timeoutS);
    s.toolSummary = r.ok && adapter.summary ? adapter.summary(r.stdout) : null;
    res.steps[key] = s;
    log(`${name}: ${label}: ${fmtS(s)}`);
    return s;
  };
  await step('first', 'first backup', adapter.backup(ctx, tree.root, 'first'));
  await step('noChange', 'no-change backup', adapter.backup(ctx, tree.root, 'nochange'));
  const touched = Math.max(1, Math.round(tree.n / 1000));
  tree.edit(0, touched);
  await step('touched', `backup after editing ${touched} files (0.1 %)`, adapter.backup(ctx, tree.root, 'touched'));
  res.touchedFiles = touched;
  const canFind = typeof adapter.find === 'function';
  if (canFind) {
    // further snapshots of small edits, so that `find` searches mcfg.snapshots snapshots that differ
    const per = Math.max(10, Math.round(tree.n / 10000));
    const extra = [];
    const extraCount = mcfg.snapshots - 3;
    const listFile = join(dir, 'changed.txt');
    log(`${name}: ${extraCount} more backups, each after editing ${per} files (${mcfg.extraMode === 'changed-from' && name === 'p2pbak' ? '--changed-from' : 'full backups'})`);
    const t0 = Date.now();
    for (let k = 1; k <= extraCount; k++) {
      const paths = tree.edit(k, per);
      let c = adapter.backup(ctx, tree.root, `extra${k}`);
      if (mcfg.extraMode === 'changed-from' && adapter.backupChanged) {
        writeFileSync(listFile, `${paths.join('\n')}\n`);
        c = adapter.backupChanged(ctx, tree.root, listFile);
      }
      const r = await run(c.cmd, c.args, { env: c.env, cwd: c.cwd ?? REPO_ROOT, okCodes: c.okCodes, timeoutS, measure: true });
      report(name, `extra backup ${k}`, r);
      extra.push({ ok: r.ok, seconds: r.seconds, cpuSeconds: r.cpuUserSeconds === null ? null : r.cpuUserSeconds + r.cpuSystemSeconds,
        peakRssMiB: r.peakRssKiB === null ? null : r.peakRssKiB / 1024 });
      if (!r.ok) break;
      if (k % 10 === 0) log(`${name}: ${k}/${extraCount} extra backups, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
    const good = extra.filter((x) => x.ok);
    res.steps.extra = { ok: good.length === extraCount, count: extra.length, filesEditedEach: per, mode: name === 'p2pbak' ? mcfg.extraMode : 'full',
      medianSeconds: median(good.map((x) => x.seconds)), medianCpuSeconds: median(good.map((x) => x.cpuSeconds)),
      totalSeconds: good.reduce((a, x) => a + x.seconds, 0),
      maxPeakRssMiB: good.length > 0 ? Math.max(...good.map((x) => x.peakRssMiB ?? 0)) : null };
    log(`${name}: extra backups: median ${res.steps.extra.medianSeconds?.toFixed(2)} s, total ${res.steps.extra.totalSeconds.toFixed(0)} s`);
    res.snapshots = 3 + good.length;
    res.steps.find = await findSeries(name, adapter.find(ctx, FIND_PATTERN), mcfg.findRuns, timeoutS);
    log(`${name}: find '${FIND_PATTERN}' over ${res.snapshots} snapshots: median ${res.steps.find.medianSeconds?.toFixed(3)} s ` +
      `(CPU ${res.steps.find.medianCpuSeconds?.toFixed(2)} s, peak RSS ${res.steps.find.medianPeakRssMiB?.toFixed(0)} MiB, ${res.steps.find.outputLines} lines)`);
    if (name === 'p2pbak' && mcfg.daemon) {
      const node = { name: 'p2pbak', home: ctx.home, env: ctx.env };
      try {
        await startDaemon(node);
        res.steps.findDaemon = await findSeries(`${name}+daemon`, adapter.find(ctx, FIND_PATTERN), mcfg.findRuns, timeoutS);
        log(`${name}: find with the daemon running: median ${res.steps.findDaemon.medianSeconds?.toFixed(3)} s (client CPU ${res.steps.findDaemon.medianCpuSeconds?.toFixed(2)} s)`);
      } catch (e) {
        res.daemonError = String(e instanceof Error ? e.message : e);
        console.error(`[bench] many: p2pbak daemon: ${res.daemonError}`);
      } finally {
        await stopDaemon(node);
      }
    }
  }
  const target = join(dir, 'restore');
  mkdirSync(target, { recursive: true });
  const rs = await step('restore', 'restore of the latest snapshot', adapter.restore(ctx, target));
  const root = adapter.restoredRoot(target, tree.root);
  if (rs.ok && !existsSync(root)) { rs.ok = false; rs.error = `restored tree not found at ${root}`; }
  if (rs.ok) {
    const v = verifyTree(tree.root, root);
    res.verify = { ok: v.ok, entries: v.entries, problems: v.problems.slice(0, 10), info: v.info };
    log(`${name}: verify: ${v.ok ? 'byte-exact, metadata equal' : 'MISMATCH'} (${v.entries} entries)`);
    for (const p of v.problems.slice(0, 10)) console.error(`  verify| ${p}`);
  }
  rmSync(target, { recursive: true, force: true });
  res.repoBytes = duBytes(adapter.repoDirs(ctx).repo);
  if (mcfg.keep) res.kept = dir;
  else rmSync(dir, { recursive: true, force: true });
  return res;
}

/** Runs the step for each tool on one generated tree; returns the results (for the JSON). */
export async function benchMany({ mcfg, seed, tmpRoot, timeoutS, adapters }) {
  const root = join(tmpRoot, `many-${mcfg.n}`);
  const tree = new ManyTree(root, mcfg.n, seed);
  log(`generating ${mcfg.n} files in ${tree.dirs} directories (seed ${seed}) in ${root}`);
  const t0 = Date.now();
  tree.generate();
  const out = { n: mcfg.n, seed, dirs: tree.dirs + tree.top, snapshots: mcfg.snapshots, pattern: FIND_PATTERN,
    generateSeconds: (Date.now() - t0) / 1000, apparentBytes: duBytes(root), loadAverageBefore: os.loadavg(), tools: {} };
  log(`generated in ${out.generateSeconds.toFixed(1)} s, ${(out.apparentBytes / 1e6).toFixed(1)} MB apparent`);
  for (const name of mcfg.tools) {
    const a = adapters[name];
    if (!a) { out.tools[name] = { skipped: true, reason: 'unknown tool' }; continue; }
    try {
      out.tools[name] = await benchManyTool(name, a, tree, mcfg, tmpRoot, timeoutS);
    } catch (e) {
      console.error(`[bench] many: ${name}: harness error: ${e instanceof Error ? e.stack : String(e)}`);
      out.tools[name] = { skipped: true, reason: `harness error: ${String(e)}` };
    }
  }
  out.loadAverageAfter = os.loadavg();
  if (!mcfg.keep) rmSync(root, { recursive: true, force: true });
  return out;
}

const fmt = (x, d) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '—');
const ok = (s) => (s?.ok ? s : null);

const ROWS = [
  ['first backup: s', (t) => ok(t.steps.first)?.seconds, 2],
  ['first backup: peak RSS MiB', (t) => ok(t.steps.first)?.peakRssMiB, 0],
  ['no-change backup: s', (t) => ok(t.steps.noChange)?.seconds, 2],
  ['no-change backup: CPU s', (t) => ok(t.steps.noChange)?.cpuSeconds, 2],
  ['no-change backup: peak RSS MiB', (t) => ok(t.steps.noChange)?.peakRssMiB, 0],
  ['0.1 % edited: s', (t) => ok(t.steps.touched)?.seconds, 2],
  ['0.1 % edited: peak RSS MiB', (t) => ok(t.steps.touched)?.peakRssMiB, 0],
  ['extra backups: median s', (t) => t.steps.extra?.medianSeconds, 2],
  ['extra backups: max peak RSS MiB', (t) => t.steps.extra?.maxPeakRssMiB, 0],
  ['find: snapshots searched', (t) => t.snapshots, 0],
  ['find: median s', (t) => ok(t.steps.find)?.medianSeconds, 3],
  ['find: median CPU s', (t) => ok(t.steps.find)?.medianCpuSeconds, 2],
  ['find: peak RSS MiB', (t) => ok(t.steps.find)?.medianPeakRssMiB, 0],
  ['find, daemon running: median s', (t) => ok(t.steps.findDaemon)?.medianSeconds, 3],
  ['restore: s', (t) => ok(t.steps.restore)?.seconds, 2],
  ['restore: peak RSS MiB', (t) => ok(t.steps.restore)?.peakRssMiB, 0],
  ['repository MB', (t) => (t.repoBytes ? t.repoBytes / 1e6 : null), 1],
];

export function manyTable(many) {
  const names = Object.keys(many.tools).filter((n) => !many.tools[n].skipped);
  const header = [`${many.n} small files`, ...names, 'p2pbak÷restic'];
  const rows = ROWS.map(([label, get, d]) => {
    const vals = names.map((n) => get(many.tools[n]));
    const p = many.tools.p2pbak && !many.tools.p2pbak.skipped ? get(many.tools.p2pbak) : null;
    const r = many.tools.restic && !many.tools.restic.skipped ? get(many.tools.restic) : null;
    return [label, ...vals.map((v) => fmt(v, d)), typeof p === 'number' && typeof r === 'number' && r > 0 && !label.startsWith('find: snap') ? fmt(p / r, 2) : ''];
  });
  rows.push(['restore verified', ...names.map((n) => (many.tools[n].verify ? (many.tools[n].verify.ok ? 'byte-exact' : 'MISMATCH') : '—')), '']);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** PASS/FAIL against item 4's bars. */
export function judgeMany(many) {
  const out = [];
  const p = many.tools.p2pbak?.skipped ? null : many.tools.p2pbak;
  const r = many.tools.restic?.skipped ? null : many.tools.restic;
  const rss = p ? ['first', 'noChange', 'touched', 'restore'].map((k) => ok(p.steps[k])?.peakRssMiB).filter((x) => typeof x === 'number') : [];
  const maxRss = rss.length > 0 ? Math.max(...rss) : null;
  out.push({ bar: `many (${many.n} files): p2pbak peak RSS <= ${MANY_BARS.peakRssMiBMax} MiB (backups and restore)`, value: maxRss,
    verdict: maxRss === null ? 'n/a' : maxRss <= MANY_BARS.peakRssMiBMax ? 'PASS' : 'FAIL', detail: maxRss === null ? 'no figure' : `${fmt(maxRss, 0)} MiB` });
  const f = ok(p?.steps.find);
  out.push({ bar: `many: p2pbak find over ${p?.snapshots ?? '—'} snapshots < ${MANY_BARS.findSecondsMax} s`, value: f?.medianSeconds ?? null,
    verdict: f ? (f.medianSeconds < MANY_BARS.findSecondsMax ? 'PASS' : 'FAIL') : 'n/a',
    detail: f ? `median ${fmt(f.medianSeconds, 3)} s (CPU ${fmt(f.medianCpuSeconds, 2)} s); restic ${fmt(ok(r?.steps.find)?.medianSeconds, 3)} s` +
      `; with the daemon running ${fmt(ok(p.steps.findDaemon)?.medianSeconds, 3)} s` : 'no figure' });
  const a = ok(p?.steps.noChange)?.seconds;
  const b = ok(r?.steps.noChange)?.seconds;
  const q = typeof a === 'number' && typeof b === 'number' && b > 0 ? a / b : null;
  out.push({ bar: `many: p2pbak no-change backup <= ${MANY_BARS.noChangeRatioMax} x restic`, value: q,
    verdict: q === null ? 'n/a' : q <= MANY_BARS.noChangeRatioMax ? 'PASS' : 'FAIL',
    detail: q === null ? 'missing figure' : `${fmt(a, 2)} / ${fmt(b, 2)} s = ${fmt(q, 2)}` });
  const v = p?.verify;
  out.push({ bar: 'many: p2pbak restore is byte-exact', value: v ? v.ok : null, verdict: v ? (v.ok ? 'PASS' : 'FAIL') : 'n/a',
    detail: v ? `${v.entries} entries compared` : 'no restore' });
  return out;
}
