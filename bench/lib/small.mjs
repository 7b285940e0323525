// The small-commands step (issue 13, item 5): start-up, `snapshots`, `ls`, `find` and restoring one
// small file, timed several times per tool on each tool's own repository of the same corpus, after
// the local backups. Medians of wall seconds and of CPU seconds (user + system, from the child's
// rusage through GNU time: steadier than wall time on a busy machine).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { startDaemon, stopDaemon } from './daemons.mjs';
import { run } from './proc.mjs';
import { REPO_ROOT } from './setup.mjs';
import { report } from './steps.mjs';

/** Item 5's bars: wall seconds of p2pbak, and p2pbak ÷ restic for the listing commands. */
export const SMALL_BARS = { versionSecondsMax: 0.15, restoreOneSecondsMax: 0.3, ratioMax: 1 };

/** The commands, in the order they run; `adapter` is the adapter method that describes each. */
export const SMALL_COMMANDS = [
  { key: 'version', label: '--version' },
  { key: 'list', label: 'snapshots' },
  { key: 'ls', label: 'ls latest DIR' },
  { key: 'find', label: 'find PATTERN' },
  { key: 'restoreOne', label: 'restore one small file' },
];

/** The p2pbak column with its daemon running on the same home (commands handed to it). */
export const DAEMON_COLUMN = 'p2pbak+daemon';

const log = (msg) => console.log(`[bench] ${msg}`);
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2;
};

function countEntries(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    n++;
    if (e.isDirectory()) n += countEntries(join(dir, e.name));
  }
  return n;
}

/** The first regular file of 1 KiB to 64 KiB below dir, in name order (depth first). */
function firstSmallFile(dir) {
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isFile()) {
      const size = statSync(p).size;
      if (size >= 1024 && size <= 65536) return { path: p, bytes: size };
    }
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const f = firstSmallFile(join(dir, e.name));
    if (f) return f;
  }
  return null;
}

/** What the commands look at: a directory of v2 (`small/d01`, some 200 entries at scale 0.1), a small file in it, `sql`. */
export function pickTargets(v2) {
  const dir = ['small/d01', 'small', '.'].map((d) => join(v2, d)).find((d) => existsSync(d));
  const file = firstSmallFile(dir) ?? firstSmallFile(v2);
  if (!file) throw new Error(`no file of 1-64 KiB in ${v2}`);
  return { dir, dirEntries: countEntries(dir), file: file.path, fileBytes: file.bytes, pattern: 'sql' };
}

/** The repository password KDF of a restic repository (scrypt, calibrated by `restic init`). */
function resticKdf(ctx) {
  try {
    const keys = join(ctx.repo, 'keys');
    const k = JSON.parse(readFileSync(join(keys, readdirSync(keys)[0]), 'utf8'));
    return { kdf: k.kdf, N: k.N, r: k.r, p: k.p };
  } catch { return null; }
}

function p2pbakKdf(ctx) {
  try {
    const k = JSON.parse(readFileSync(join(ctx.home, 'identity.json'), 'utf8')).kdf;
    return k === null ? null : { kdf: k.algorithm, opslimit: k.opslimit, memlimit: k.memlimit };
  } catch { return null; }
}

function command(adapter, key, ctx, targets, scratch) {
  if (typeof adapter[key] !== 'function') return null;
  switch (key) {
    case 'version': case 'list': return adapter[key](ctx);
    case 'ls': return adapter.ls(ctx, targets.dir);
    case 'find': return adapter.find(ctx, targets.pattern);
    case 'restoreOne': return adapter.restoreOne(ctx, scratch, targets.file);
    default: throw new Error(`unknown small command ${key}`);
  }
}

/** One run of one command; a one-file restore goes to a fresh directory, checked and removed afterwards. */
async function once(name, adapter, key, ctx, targets, tmpRoot, timeoutS) {
  const scratch = key === 'restoreOne' ? mkdtempSync(join(tmpRoot, `one-${name}-`)) : null;
  try {
    const c = command(adapter, key, ctx, targets, scratch);
    if (c === null) return null;
    const r = await run(c.cmd, c.args, { env: c.env, cwd: c.cwd ?? REPO_ROOT, okCodes: c.okCodes, timeoutS, measure: true });
    report(name, key, r);
    let ok = r.ok;
    let error = r.error ?? (r.ok ? null : `exit ${r.code}`);
    if (ok && key === 'restoreOne') {
      const got = adapter.restoredRoot(scratch, targets.file);
      if (!existsSync(got) || !readFileSync(got).equals(readFileSync(targets.file))) {
        ok = false;
        error = `the restored file ${got} is missing or differs`;
        console.error(`[bench] ${name}: ${error}`);
      }
    }
    return { ok, error, seconds: r.seconds, cpuSeconds: r.cpuUserSeconds === null ? null : r.cpuUserSeconds + r.cpuSystemSeconds,
      peakRssMiB: r.peakRssKiB === null ? null : r.peakRssKiB / 1024, stdoutLines: r.stdout.split('\n').filter(Boolean).length };
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

function summarize(runs) {
  const good = runs.filter((x) => x.ok);
  return {
    ok: runs.length > 0 && good.length === runs.length,
    runs,
    medianSeconds: median(good.map((x) => x.seconds)),
    medianCpuSeconds: median(good.map((x) => x.cpuSeconds)),
    minSeconds: good.length > 0 ? Math.min(...good.map((x) => x.seconds)) : null,
    medianPeakRssMiB: median(good.map((x) => x.peakRssMiB)),
    outputLines: good[0]?.stdoutLines ?? null,
  };
}

/**
 * columns: [{ name, adapter, ctx }] of tools whose backups succeeded. Each command runs once untimed per
 * tool (warm caches), then `runs` times, the tools alternating (order reversed every other round) so
 * that a load spike from other processes hits them alike. With `daemon`, p2pbak's commands run again
 * with `p2pbak daemon` running on its home (a further column, DAEMON_COLUMN).
 */
export async function benchSmall({ columns, corpus, runs, tmpRoot, timeoutS, daemon }) {
  const targets = pickTargets(corpus.v2);
  log(`small commands: ${runs} runs each; ls ${targets.dir} (${targets.dirEntries} entries), find '${targets.pattern}', ` +
    `restore ${targets.file} (${targets.fileBytes} B)`);
  const loadBefore = os.loadavg();
  const out = { runs, targets, loadAverageBefore: loadBefore, tools: {}, kdf: {} };
  for (const c of columns) {
    if (c.name === 'restic') out.kdf.restic = resticKdf(c.ctx);
    if (c.name === 'p2pbak') out.kdf.p2pbak = p2pbakKdf(c.ctx);
  }
  const series = new Map(columns.map((c) => [c.name, Object.fromEntries(SMALL_COMMANDS.map((k) => [k.key, []]))]));
  for (const { key } of SMALL_COMMANDS) {
    for (const c of columns) await once(c.name, c.adapter, key, c.ctx, targets, tmpRoot, timeoutS); // warm-up, untimed
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? columns : [...columns].reverse();
      for (const c of order) {
        const r = await once(c.name, c.adapter, key, c.ctx, targets, tmpRoot, timeoutS);
        if (r !== null) series.get(c.name)[key].push(r);
      }
    }
  }
  for (const c of columns) {
    out.tools[c.name] = Object.fromEntries(Object.entries(series.get(c.name))
      .filter(([, rs]) => rs.length > 0).map(([k, rs]) => [k, summarize(rs)]));
  }
  const p = columns.find((c) => c.name === 'p2pbak');
  if (daemon && p) {
    const node = { name: 'p2pbak', home: p.ctx.home, env: p.ctx.env };
    try {
      await startDaemon(node);
      const d = {};
      for (const { key } of SMALL_COMMANDS) {
        if (key === 'version') continue; // answered before any daemon is looked for
        await once(DAEMON_COLUMN, p.adapter, key, p.ctx, targets, tmpRoot, timeoutS);
        const rs = [];
        for (let i = 0; i < runs; i++) rs.push(await once(DAEMON_COLUMN, p.adapter, key, p.ctx, targets, tmpRoot, timeoutS));
        d[key] = summarize(rs);
      }
      out.tools[DAEMON_COLUMN] = d;
    } catch (e) {
      out.daemonError = String(e instanceof Error ? e.message : e);
      console.error(`[bench] ${DAEMON_COLUMN}: ${out.daemonError}`);
    } finally {
      const s = await stopDaemon(node);
      if (s.killed || (s.code !== 0 && s.code !== null)) out.daemonStop = s;
    }
  }
  out.loadAverageAfter = os.loadavg();
  return out;
}

const fmt = (x, d) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '—');
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? a / b : null);

/** The step's table: median wall and CPU seconds per tool, and p2pbak ÷ restic of each. */
export function smallTable(small) {
  const names = Object.keys(small.tools);
  const vsBefore = names.includes('p2pbak-before');
  const header = ['small command (median)', ...names.flatMap((n) => [`${n} s`, `${n} cpu`]), 'p2pbak÷restic s', 'p2pbak÷restic cpu',
    ...(vsBefore ? ['p2pbak÷before cpu'] : [])];
  const rows = SMALL_COMMANDS.map(({ key, label }) => {
    const cell = (n) => small.tools[n]?.[key];
    const p = cell('p2pbak');
    const r = cell('restic');
    return [label, ...names.flatMap((n) => [fmt(cell(n)?.medianSeconds, 3), fmt(cell(n)?.medianCpuSeconds, 2)]),
      fmt(ratio(p?.medianSeconds, r?.medianSeconds), 2), fmt(ratio(p?.medianCpuSeconds, r?.medianCpuSeconds), 2),
      ...(vsBefore ? [fmt(ratio(p?.medianCpuSeconds, cell('p2pbak-before')?.medianCpuSeconds), 2)] : [])];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** PASS/FAIL against item 5's bars (wall seconds; the CPU ratio is given beside it). */
export function judgeSmall(small) {
  const out = [];
  const p = small.tools.p2pbak;
  const r = small.tools.restic;
  const d = small.tools[DAEMON_COLUMN];
  const under = (bar, st, max, what) => {
    const v = st?.ok ? st.medianSeconds : null;
    out.push({ bar, value: v, verdict: v === null ? 'n/a' : v < max ? 'PASS' : 'FAIL',
      detail: v === null ? `no ${what} figure` : `median ${fmt(v, 3)} s (CPU ${fmt(st.medianCpuSeconds, 2)} s) over ${st.runs.length} runs` });
  };
  under(`p2pbak --version < ${SMALL_BARS.versionSecondsMax} s`, p?.version, SMALL_BARS.versionSecondsMax, 'p2pbak');
  for (const key of ['list', 'ls', 'find']) {
    const label = SMALL_COMMANDS.find((c) => c.key === key).label;
    const a = p?.[key]?.ok ? p[key] : null;
    const b = r?.[key]?.ok ? r[key] : null;
    const q = ratio(a?.medianSeconds, b?.medianSeconds);
    out.push({ bar: `p2pbak ${label} <= ${SMALL_BARS.ratioMax} x restic (wall)`, value: q,
      verdict: q === null ? 'n/a' : q <= SMALL_BARS.ratioMax ? 'PASS' : 'FAIL',
      detail: q === null ? 'missing p2pbak or restic figure'
        : `${fmt(a.medianSeconds, 3)} / ${fmt(b.medianSeconds, 3)} s = ${fmt(q, 2)}; CPU ${fmt(a.medianCpuSeconds, 2)} / ${fmt(b.medianCpuSeconds, 2)} s = ${fmt(ratio(a.medianCpuSeconds, b.medianCpuSeconds), 2)}` });
  }
  under(`p2pbak restore of one small file < ${SMALL_BARS.restoreOneSecondsMax} s (no daemon)`, p?.restoreOne,
    SMALL_BARS.restoreOneSecondsMax, 'p2pbak');
  if (d) under(`p2pbak restore of one small file < ${SMALL_BARS.restoreOneSecondsMax} s (daemon running)`, d.restoreOne,
    SMALL_BARS.restoreOneSecondsMax, DAEMON_COLUMN);
  return out;
}
