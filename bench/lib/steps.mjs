// Pieces every timed step shares: failure reports, flushing the disks, the busy check, step records.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tail } from './proc.mjs';
import { UNITS } from './report.mjs';

/** Print why a command failed, with the end of its stderr (or stdout when stderr is empty). */
export function report(tool, label, r) {
  if (r.ok) return;
  const why = r.error ?? (r.signal ? `signal ${r.signal}` : `exit ${r.code}`);
  console.error(`[bench] ${tool}: ${label} FAILED (${why})`);
  const err = tail(r.stderr);
  if (err) console.error(err.replace(/^/gm, `  ${tool} stderr| `));
  if (!err && r.stdout) console.error(tail(r.stdout, 10).replace(/^/gm, `  ${tool} stdout| `));
}

/** Flush dirty pages so that writes of earlier steps are not paid for by the next one; returns seconds. */
export function syncDisks() {
  const t0 = process.hrtime.bigint();
  spawnSync('sync', [], { stdio: 'ignore' });
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function cpuTimes() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  return { idle, total: f.reduce((x, y) => x + y, 0) };
}

/** Share of all CPUs busy (0..1) during a 1 s window in which the harness itself is idle. */
export async function othersBusy() {
  try {
    const a = cpuTimes();
    await new Promise((res) => setTimeout(res, 1000));
    const b = cpuTimes();
    return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : null;
  } catch { return null; }
}

/** The figures of one timed command; bytes (apparent size of the tree) gives MB/s. */
export function stepRecord(r, bytes) {
  return {
    ok: r.ok, exitCode: r.code, signal: r.signal, error: r.error, seconds: r.seconds,
    mbps: r.ok && bytes && r.seconds > 0 ? bytes / r.seconds / UNITS.MB : null,
    peakRssMiB: r.peakRssKiB === null ? null : r.peakRssKiB / 1024,
    rssTimeMiB: r.rssTimeKiB === null ? null : r.rssTimeKiB / 1024,
    rssTreeMiB: r.rssTreeKiB === null ? null : r.rssTreeKiB / 1024,
    cpuSeconds: r.cpuUserSeconds === null || r.cpuUserSeconds === undefined ? null : r.cpuUserSeconds + r.cpuSystemSeconds,
    stderrTail: r.ok ? undefined : tail(r.stderr),
  };
}
