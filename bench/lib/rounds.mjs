// Rounds of the local steps (BENCH_ROUNDS): every tool runs its whole sequence (init, v1, v2, v2 again,
// restore) once per round, in a fresh repository, the tools taking turns, and the table and the bars
// read one figure per step out of the rounds. A single run moved a bar's verdict on this 2-core VM
// (v2 again 1.22x restic in one run, 0.96x over ten pairs the same hour).

/** The median of numbers (the lower one of the two middle values for an even count); null if none. */
function lowerMedian(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  return v.length === 0 ? null : v[(v.length - 1) >> 1];
}

/**
 * One tool's results out of its rounds. Each step is the round with the median seconds, so its
 * seconds, MB/s and repository growth belong to one real run; its peak RSS is the largest of all
 * rounds (a bound must hold in every run). A step that failed in any round shows that failure. The
 * restore's verification fails if any round's did. Every round's figures stay in `rounds`.
 */
export function combineRounds(rounds) {
  const done = rounds.filter((r) => r && !r.skipped);
  if (done.length === 0) return rounds[rounds.length - 1];
  if (done.length === 1 && rounds.length === 1) return done[0];
  const out = { ...done[done.length - 1], steps: {}, roundsRun: done.length };
  for (const key of Object.keys(done[0].steps ?? {})) {
    const runs = done.map((r) => r.steps?.[key]).filter(Boolean);
    const failed = runs.find((s) => !s.ok);
    if (failed) { out.steps[key] = { ...failed, roundsFailed: runs.filter((s) => !s.ok).length }; continue; }
    const seconds = lowerMedian(runs.map((s) => s.seconds));
    const pick = runs.find((s) => s.seconds === seconds) ?? runs[0];
    const peaks = runs.map((s) => s.peakRssMiB).filter((x) => typeof x === 'number');
    out.steps[key] = {
      ...pick,
      peakRssMiB: peaks.length > 0 ? Math.max(...peaks) : null,
      rounds: runs.map((s) => ({ seconds: s.seconds, mbps: s.mbps, peakRssMiB: s.peakRssMiB, cpuSeconds: s.cpuSeconds,
        repoGrew: s.repoGrew ?? null, cpuBusyBefore: s.cpuBusyBefore ?? null })),
    };
  }
  const verifies = done.map((r) => r.verify).filter(Boolean);
  if (verifies.length > 0) out.verify = verifies.find((v) => !v.ok) ?? verifies[verifies.length - 1];
  return out;
}

/** "7.03 (6.95-7.40)" for a step's rounds: the figure shown, then the range over the rounds. */
export function roundsRange(step, field, digits) {
  const xs = (step?.rounds ?? []).map((r) => r[field]).filter((x) => typeof x === 'number');
  if (xs.length < 2) return null;
  return `${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}`;
}
