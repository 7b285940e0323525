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

/** Rows: [label, getter(toolResult) -> number|null, digits, ratio?] */
const ROWS = [
  ['v1 backup: seconds', (r) => r.steps.v1?.ok ? r.steps.v1.seconds : null, 2, true],
  ['v1 backup: MB/s', (r) => r.steps.v1?.ok ? r.steps.v1.mbps : null, 1, true],
  ['v1 backup: peak RSS MiB', (r) => r.steps.v1?.ok ? r.steps.v1.peakRssMiB : null, 0, true],
  ['v1 backup: repo size MB', (r) => r.steps.v1?.ok ? r.steps.v1.repoAfter / MB : null, 1, true],
  ['v2 backup (reads all): seconds', (r) => r.steps.v2?.ok ? r.steps.v2.seconds : null, 2, true],
  ['v2 backup: MB/s', (r) => r.steps.v2?.ok ? r.steps.v2.mbps : null, 1, true],
  ['v2 backup: peak RSS MiB', (r) => r.steps.v2?.ok ? r.steps.v2.peakRssMiB : null, 0, true],
  ['v2 backup: store grew MB', (r) => r.steps.v2?.ok ? storeGrew(r.steps.v2) / MB : null, 2, true],
  ['v2 backup: home/repo grew MB', (r) => r.steps.v2?.ok ? r.steps.v2.repoGrew / MB : null, 2, true],
  ['v2 again (no change): seconds', (r) => r.steps.v2again?.ok ? r.steps.v2again.seconds : null, 2, true],
  ['v2 again: peak RSS MiB', (r) => r.steps.v2again?.ok ? r.steps.v2again.peakRssMiB : null, 0, true],
  ['v2 again: repo grew MB', (r) => r.steps.v2again?.ok ? r.steps.v2again.repoGrew / MB : null, 3, false],
  ['restore v2: seconds', (r) => r.steps.restore?.ok ? r.steps.restore.seconds : null, 2, true],
  ['restore v2: MB/s', (r) => r.steps.restore?.ok ? r.steps.restore.mbps : null, 1, true],
  ['restore v2: peak RSS MiB', (r) => r.steps.restore?.ok ? r.steps.restore.peakRssMiB : null, 0, true],
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
  const header = ['step', ...toolNames, 'p2pbak÷restic'];
  const rows = ROWS.map(([label, get, digits, withRatio]) => {
    const vals = toolNames.map((t) => (results[t] ? get(results[t]) : null));
    const p = results.p2pbak ? get(results.p2pbak) : null;
    const r = results.restic ? get(results.restic) : null;
    return [label, ...vals.map((v) => fmt(v, digits)), withRatio ? fmt(ratio(p, r), 2) : ''];
  });
  const verify = results.p2pbak?.verify;
  rows.push(['restore v2: verified', ...toolNames.map((t) => (t === 'p2pbak'
    ? (verify ? (verify.ok ? 'byte-exact' : 'MISMATCH') : '—') : 'not checked')), '']);
  rows.push(['steps failed', ...toolNames.map((t) => {
    const r = results[t];
    if (!r) return 'skipped';
    const bad = Object.entries(r.steps).filter(([, s]) => !s.ok).map(([k]) => k);
    return bad.length === 0 ? 'none' : bad.join(',');
  }), '']);
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
