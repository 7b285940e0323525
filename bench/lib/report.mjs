// The printed table, the ratios and the project's bars.
const MB = 1e6;
const MiB = 2 ** 20;

/**
 * The bars of issue 13 (items 1–3), p2pbak against restic in the same run, plus the two the harness
 * has always checked (v2 bytes added, a byte-exact restore). Item 4's bars are in many.mjs, item 5's
 * in small.mjs.
 */
export const BARS = {
  v1ThroughputRatioMin: 1.3,
  v2ThroughputRatioMin: 1.0,
  noChangeSecondsRatioMax: 1.0,
  restoreThroughputRatioMin: 1.2,
  cliPeakRssMiBMax: 200,
  v2AddedRatioMax: 1.25,
  groupBackupRatioMin: 0.6,
  groupRestoreRatioMin: 0.8,
  publisherDaemonPeakRssMiBMax: 256,
  persisterPeakRssMiBMax: 128,
  persisterCpuSecondsPerGbMax: 4,
  /** BENCH_COMPARE: each peak within this fraction of the same peak in a run at another scale. */
  peakAcrossScalesMax: 0.1,
};

function num(x) { return typeof x === 'number' && Number.isFinite(x) ? x : null; }

function fmt(x, digits) {
  const v = num(x);
  if (v === null) return '—';
  return v.toFixed(digits);
}

/** The column of the five-node loopback group (bench/lib/group.mjs). */
export const GROUP_TOOL = 'p2pbak-group';

const ok = (st) => (st?.ok ? st : null);
const v1 = (r) => ok(r.steps.v1);
const rs = (r) => ok(r.steps.restore);
const gb = (g) => ok(g.steps.groupBackup);
const gr = (g) => ok(g.steps.groupRestore);

/**
 * Rows: { label, get(toolResult), digits, ratio (p2pbak÷restic), group(groupResult), vs(resticResult) }.
 * `group` fills the p2pbak-group column; `vs` is the restic figure the group÷restic column divides by.
 */
const ROWS = [
  { label: 'v1 backup: seconds', get: (r) => v1(r)?.seconds, digits: 2, ratio: true,
    group: (g) => gb(g)?.seconds, vs: (r) => v1(r)?.seconds },
  { label: 'v1 backup: MB/s', get: (r) => v1(r)?.mbps, digits: 1, ratio: true,
    group: (g) => gb(g)?.mbps, vs: (r) => v1(r)?.mbps },
  { label: 'v1 backup: peak RSS MiB', get: (r) => v1(r)?.peakRssMiB, digits: 0, ratio: true,
    group: (g) => gb(g)?.peakRssMiB, vs: (r) => v1(r)?.peakRssMiB },
  { label: 'v1 backup: repo size MB', get: (r) => (v1(r) ? r.steps.v1.repoAfter / MB : null), digits: 1, ratio: true,
    group: (g) => (gb(g) && g.held ? g.held.total / MB : null), vs: (r) => (v1(r) ? r.steps.v1.repoAfter / MB : null) },
  { label: 'v2 backup (reads all): seconds', get: (r) => ok(r.steps.v2)?.seconds, digits: 2, ratio: true },
  { label: 'v2 backup: MB/s', get: (r) => ok(r.steps.v2)?.mbps, digits: 1, ratio: true },
  { label: 'v2 backup: peak RSS MiB', get: (r) => ok(r.steps.v2)?.peakRssMiB, digits: 0, ratio: true },
  { label: 'v2 backup: store grew MB', get: (r) => (ok(r.steps.v2) ? storeGrew(r.steps.v2) / MB : null), digits: 2, ratio: true },
  { label: 'v2 backup: home/repo grew MB', get: (r) => (ok(r.steps.v2) ? r.steps.v2.repoGrew / MB : null), digits: 2, ratio: true },
  { label: 'v2 again (no change): seconds', get: (r) => ok(r.steps.v2again)?.seconds, digits: 2, ratio: true },
  { label: 'v2 again: peak RSS MiB', get: (r) => ok(r.steps.v2again)?.peakRssMiB, digits: 0, ratio: true },
  { label: 'v2 again: repo grew MB', get: (r) => (ok(r.steps.v2again) ? r.steps.v2again.repoGrew / MB : null), digits: 3, ratio: false },
  { label: 'restore v2: seconds', get: (r) => rs(r)?.seconds, digits: 2, ratio: true },
  { label: 'restore v2: MB/s', get: (r) => rs(r)?.mbps, digits: 1, ratio: true },
  { label: 'restore v2: peak RSS MiB', get: (r) => rs(r)?.peakRssMiB, digits: 0, ratio: true },
];

/** Rows of the group alone (other tool columns stay empty); vs divides by restic's local figure. */
const GROUP_ROWS = [
  { label: 'group v1 backup: largest persister RSS MiB', group: (g) => gb(g)?.persisterMaxPeakRssMiB, digits: 0 },
  { label: 'group v1 backup: publisher CPU s per GB sent', group: (g) => gb(g)?.publisherCpuSecondsPerGbSent, digits: 2 },
  ...['persister-1', 'persister-2', 'persister-3', 'persister-4'].map((name) => ({
    label: `group v1 backup: ${name} CPU s per GB held`, group: (g) => gb(g)?.daemons?.[name]?.cpuSecondsPerGb, digits: 2 })),
  { label: 'group v1 backup: held ÷ bytes added', group: (g) => (gb(g) ? g.held?.ratio : null), digits: 3 },
  { label: 'group restore v1, 1 down: seconds', group: (g) => gr(g)?.seconds, digits: 2 },
  { label: 'group restore v1, 1 down: MB/s', group: (g) => gr(g)?.mbps, digits: 1, vs: (r) => rs(r)?.mbps },
  { label: 'group restore v1, 1 down: peak RSS MiB', group: (g) => gr(g)?.peakRssMiB, digits: 0,
    vs: (r) => rs(r)?.peakRssMiB },
  { label: 'group restore: largest persister RSS MiB', group: (g) => gr(g)?.persisterMaxPeakRssMiB, digits: 0 },
];

/**
 * What a backup added to the store that holds the data: p2pbak's store/ (its index under HOME/index
 * is a local cache, rebuildable from the store and never sent to peers, like restic's and borg's
 * caches, which are not counted either); restic's and borg's whole repo dir.
 */
function storeGrew(step) {
  return step.extraGrew?.store ?? step.repoGrew;
}

function ratio(a, b) {
  return num(a) !== null && num(b) !== null && b !== 0 ? a / b : null;
}

const live = (r) => (r && !r.skipped && r.steps ? r : null);

export function buildTable(allResults, toolNames) {
  const results = Object.fromEntries(toolNames.map((t) => [t, live(allResults[t])]));
  const g = live(allResults[GROUP_TOOL]);
  const restic = results.restic ?? live(allResults.restic);
  const header = ['step', ...toolNames, ...(g ? [GROUP_TOOL] : []), 'p2pbak÷restic', ...(g ? ['group÷restic'] : [])];
  const groupCells = (row) => {
    if (!g) return [];
    if (!row.group) return [''];
    return [fmt(row.group(g), row.digits)];
  };
  const groupRatio = (row) => {
    if (!g) return [];
    if (!row.group || !row.vs) return [''];
    return [fmt(ratio(row.group(g), restic ? row.vs(restic) : null), 2)];
  };
  const rows = ROWS.map((row) => {
    const vals = toolNames.map((t) => (results[t] ? row.get(results[t]) : null));
    const p = results.p2pbak ? row.get(results.p2pbak) : null;
    const r = results.restic ? row.get(results.restic) : null;
    return [row.label, ...vals.map((v) => fmt(v, row.digits)), ...groupCells(row),
      row.ratio ? fmt(ratio(p, r), 2) : '', ...groupRatio(row)];
  });
  const verify = results.p2pbak?.verify;
  rows.push(['restore v2: verified', ...toolNames.map((t) => (t === 'p2pbak'
    ? (verify ? (verify.ok ? 'byte-exact' : 'MISMATCH') : '—') : 'not checked')), ...(g ? [''] : []), '', ...(g ? [''] : [])]);
  if (g) {
    for (const row of GROUP_ROWS) {
      rows.push([row.label, ...toolNames.map(() => ''), ...groupCells(row), '', ...groupRatio(row)]);
    }
    const sc = g.scheme;
    rows.push(['group scheme (k+m)', ...toolNames.map(() => ''),
      sc && sc.k !== null ? `${sc.k}+${sc.m}` : '—', '', '']);
    rows.push(['group restore v1: verified', ...toolNames.map(() => ''),
      g.verify ? (g.verify.ok ? 'byte-exact' : 'MISMATCH') : '—', '', '']);
  }
  rows.push(['steps failed', ...[...toolNames, ...(g ? [GROUP_TOOL] : [])].map((t) => {
    const r = t === GROUP_TOOL ? g : results[t];
    if (!r) return 'skipped';
    const bad = Object.entries(r.steps).filter(([, s]) => !s.ok).map(([k]) => k);
    return bad.length === 0 ? 'none' : bad.join(',');
  }), '', ...(g ? [''] : [])]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i])))
    .join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const LOCAL_STEPS = ['v1', 'v2', 'v2again', 'restore'];
const GROUP_STEPS = ['groupBackup', 'groupRestore'];

/** The peaks the memory bars judge, by name: the largest over the steps each bar covers. */
export function peaks(allResults) {
  const p = live(allResults.p2pbak);
  const g = live(allResults[GROUP_TOOL]);
  const max = (xs) => {
    const v = xs.map(num).filter((x) => x !== null);
    return v.length > 0 ? Math.max(...v) : null;
  };
  const gSteps = g ? GROUP_STEPS.map((k) => ok(g.steps[k])).filter(Boolean) : [];
  return {
    cli: p ? max(LOCAL_STEPS.map((k) => ok(p.steps[k])?.peakRssMiB)) : null,
    publisherDaemon: max(gSteps.map((s) => s.publisherDaemonPeakRssMiB)),
    persister: max(gSteps.map((s) => s.persisterMaxPeakRssMiB)),
  };
}

/**
 * PASS/FAIL against the bars; each verdict is { bar, value, verdict, detail }. `compare`, when given, is
 * { scale, previous }: this run's scale and the results JSON of an earlier run (BENCH_COMPARE) at
 * another scale, whose peaks are compared with this run's.
 */
export function judge(results, compare = null) {
  const p = live(results.p2pbak);
  const r = live(results.restic);
  const g = live(results[GROUP_TOOL]);
  const out = [];
  const push = (bar, value, pass, detail) =>
    out.push({ bar, value, verdict: value === null ? 'n/a' : pass ? 'PASS' : 'FAIL', detail });
  /** A ratio bar: p2pbak's figure ÷ restic's, at least (min) or at most (max) the bound. */
  const ratioBar = (bar, a, b, bound, atLeast, unit) => {
    const q = ratio(a, b);
    push(bar, q, q !== null && (atLeast ? q >= bound : q <= bound),
      q === null ? 'missing p2pbak or restic figure' : `${fmt(a, 2)} / ${fmt(b, 2)} ${unit} = ${fmt(q, 2)}`);
  };
  const fig = (t, step, key) => (t ? num(ok(t.steps[step])?.[key]) : null);

  ratioBar(`v1 backup throughput >= ${BARS.v1ThroughputRatioMin} x restic`, fig(p, 'v1', 'mbps'), fig(r, 'v1', 'mbps'),
    BARS.v1ThroughputRatioMin, true, 'MB/s');
  ratioBar(`v2 backup (reads all) throughput >= ${BARS.v2ThroughputRatioMin} x restic`, fig(p, 'v2', 'mbps'),
    fig(r, 'v2', 'mbps'), BARS.v2ThroughputRatioMin, true, 'MB/s');
  ratioBar(`v2 again (no change) seconds <= ${BARS.noChangeSecondsRatioMax} x restic`, fig(p, 'v2again', 'seconds'),
    fig(r, 'v2again', 'seconds'), BARS.noChangeSecondsRatioMax, false, 's');
  ratioBar(`restore throughput >= ${BARS.restoreThroughputRatioMin} x restic`, fig(p, 'restore', 'mbps'),
    fig(r, 'restore', 'mbps'), BARS.restoreThroughputRatioMin, true, 'MB/s');
  const pk = peaks(results);
  push(`CLI peak RSS <= ${BARS.cliPeakRssMiBMax} MiB (local backups and restore)`, pk.cli,
    pk.cli !== null && pk.cli <= BARS.cliPeakRssMiBMax, pk.cli === null ? 'no p2pbak figure' : `${fmt(pk.cli, 0)} MiB`);
  const ap = p?.steps.v2?.ok ? storeGrew(p.steps.v2) : null;
  const ar = r?.steps.v2?.ok ? storeGrew(r.steps.v2) : null;
  const ga = ratio(ap, ar);
  push(`v2 bytes added to the store <= ${BARS.v2AddedRatioMax} x restic (p2pbak store/ vs restic repo; local caches not counted)`,
    ga, ga !== null && ga <= BARS.v2AddedRatioMax,
    ga === null ? 'missing p2pbak or restic figure' : `${fmt(ap / MB, 2)} / ${fmt(ar / MB, 2)} MB = ${fmt(ga, 2)}`);
  {
    const v = p?.verify;
    push('p2pbak restore of v2 is byte-exact with modes, mtimes (s) and symlinks', v ? v.ok : null, Boolean(v?.ok),
      v ? `${v.entries} entries compared` : 'p2pbak restore did not run');
  }
  if (g) {
    ratioBar(`group v1 backup throughput >= ${BARS.groupBackupRatioMin} x restic's local v1`,
      fig(g, 'groupBackup', 'mbps'), fig(r, 'v1', 'mbps'), BARS.groupBackupRatioMin, true, 'MB/s');
    ratioBar(`group restore, one persister down, throughput >= ${BARS.groupRestoreRatioMin} x restic's local restore`,
      fig(g, 'groupRestore', 'mbps'), fig(r, 'restore', 'mbps'), BARS.groupRestoreRatioMin, true, 'MB/s');
    push(`publisher daemon peak RSS <= ${BARS.publisherDaemonPeakRssMiBMax} MiB (group backup and restore)`,
      pk.publisherDaemon, pk.publisherDaemon !== null && pk.publisherDaemon <= BARS.publisherDaemonPeakRssMiBMax,
      pk.publisherDaemon === null ? 'no figure' : `${fmt(pk.publisherDaemon, 0)} MiB`);
    push(`every persister daemon peak RSS <= ${BARS.persisterPeakRssMiBMax} MiB (group backup and restore)`,
      pk.persister, pk.persister !== null && pk.persister <= BARS.persisterPeakRssMiBMax,
      pk.persister === null ? 'no figure' : `largest ${fmt(pk.persister, 0)} MiB`);
    const perGb = Object.entries(ok(g.steps.groupBackup)?.daemons ?? {})
      .filter(([name, d]) => name.startsWith('persister') && num(d.cpuSecondsPerGb) !== null)
      .map(([name, d]) => [name, d.cpuSecondsPerGb]);
    const worst = perGb.length > 0 ? Math.max(...perGb.map(([, x]) => x)) : null;
    push(`every persister <= ${BARS.persisterCpuSecondsPerGbMax} CPU s per GB it holds (group backup)`, worst,
      worst !== null && worst <= BARS.persisterCpuSecondsPerGbMax,
      worst === null ? 'no persister holds shares' : perGb.map(([n, x]) => `${n} ${fmt(x, 1)}`).join(', '));
    push('group restore of v1 is byte-exact', g.verify ? g.verify.ok : null, Boolean(g.verify?.ok),
      g.verify ? `${g.verify.entries} entries compared` : 'the group restore did not run or failed');
  }
  if (compare) out.push(...judgeAcrossScales(results, compare.scale, compare.previous));
  return out;
}

/** Item 2: each peak stays within 10 % when the corpus is larger; `previous` is a run at another scale. */
function judgeAcrossScales(tools, scale, previous) {
  const out = [];
  const now = { scale, peaks: peaks(tools) };
  const then = { scale: previous.config?.scale, peaks: peaks(previous.tools ?? {}) };
  if (typeof now.scale !== 'number' || typeof then.scale !== 'number' || now.scale === then.scale) {
    out.push({ bar: 'peaks across scales (BENCH_COMPARE)', value: null, verdict: 'n/a',
      detail: `the compared run is at scale ${then.scale}, this one at ${now.scale}: they must differ` });
    return out;
  }
  const [small, large] = now.scale < then.scale ? [now, then] : [then, now];
  for (const [key, label] of [['cli', 'CLI'], ['publisherDaemon', 'publisher daemon'], ['persister', 'largest persister']]) {
    const a = small.peaks[key];
    const b = large.peaks[key];
    const growth = num(a) !== null && num(b) !== null && a > 0 ? b / a - 1 : null;
    out.push({ bar: `${label} peak RSS at scale ${large.scale} within ${BARS.peakAcrossScalesMax * 100} % of scale ${small.scale}`,
      value: growth, verdict: growth === null ? 'n/a' : growth <= BARS.peakAcrossScalesMax ? 'PASS' : 'FAIL',
      detail: growth === null ? 'a figure is missing in one of the runs'
        : `${fmt(b, 0)} MiB vs ${fmt(a, 0)} MiB (${growth >= 0 ? '+' : ''}${fmt(growth * 100, 1)} %)` });
  }
  return out;
}

export const UNITS = { MB, MiB };
