// The printed table, the ratios and the project's bars.
const MB = 1e6;
const MiB = 2 ** 20;

/** Project bars (p2pbak against restic). */
export const BARS = {
  v1ThroughputRatioMin: 0.7,
  peakRssMiBMax: 300,
  v2AddedRatioMax: 1.25,
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

/** PASS/FAIL against the bars; each verdict is { bar, value, verdict, detail }. */
export function judge(results) {
  const p = live(results.p2pbak);
  const r = live(results.restic);
  const out = [];
  const v1p = p?.steps.v1?.ok ? p.steps.v1.mbps : null;
  const v1r = r?.steps.v1?.ok ? r.steps.v1.mbps : null;
  const tr = ratio(v1p, v1r);
  out.push({
    bar: `v1 backup throughput >= ${BARS.v1ThroughputRatioMin} x restic`,
    value: tr,
    verdict: tr === null ? 'n/a' : tr >= BARS.v1ThroughputRatioMin ? 'PASS' : 'FAIL',
    detail: tr === null ? 'missing p2pbak or restic figure' : `${fmt(v1p, 1)} / ${fmt(v1r, 1)} MB/s = ${fmt(tr, 2)}`,
  });
  const rss = p ? Object.values(p.steps).filter((s) => s.ok && num(s.peakRssMiB) !== null).map((s) => s.peakRssMiB) : [];
  const maxRss = rss.length > 0 ? Math.max(...rss) : null;
  out.push({
    bar: `p2pbak peak RSS < ${BARS.peakRssMiBMax} MiB (max over its timed steps)`,
    value: maxRss,
    verdict: maxRss === null ? 'n/a' : maxRss < BARS.peakRssMiBMax ? 'PASS' : 'FAIL',
    detail: maxRss === null ? 'no p2pbak figure' : `${fmt(maxRss, 0)} MiB`,
  });
  const ap = p?.steps.v2?.ok ? storeGrew(p.steps.v2) : null;
  const ar = r?.steps.v2?.ok ? storeGrew(r.steps.v2) : null;
  const ga = ratio(ap, ar);
  out.push({
    bar: `v2 bytes added to the store <= ${BARS.v2AddedRatioMax} x restic (p2pbak store/ vs restic repo; local caches not counted)`,
    value: ga,
    verdict: ga === null ? 'n/a' : ga <= BARS.v2AddedRatioMax ? 'PASS' : 'FAIL',
    detail: ga === null ? 'missing p2pbak or restic figure'
      : `${fmt(ap / MB, 2)} / ${fmt(ar / MB, 2)} MB = ${fmt(ga, 2)}`,
  });
  {
    const v = p?.verify;
    out.push({
      bar: 'p2pbak restore of v2 is byte-exact with modes, mtimes (s) and symlinks',
      value: v ? v.ok : null,
      verdict: v ? (v.ok ? 'PASS' : 'FAIL') : 'n/a',
      detail: v ? `${v.entries} entries compared` : 'p2pbak restore did not run',
    });
  }
  return out;
}

export const UNITS = { MB, MiB };
