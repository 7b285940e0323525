// Running commands for the benchmark: wall time, peak RSS, captured output, timeouts.
//
// Peak RSS is measured two ways and the larger is reported:
//   - GNU time's %M (ru_maxrss of the largest single process in the tree, exact, from the kernel);
//   - the sum of RSS over the whole process tree below the command, sampled every 100 ms from /proc.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const GNU_TIME = '/usr/bin/time';
const POLL_MS = 100;
const STDOUT_CAP = 64 << 20;
const STDERR_CAP = 256 << 10;

let pageSize = 4096;
try {
  const r = spawnSync('getconf', ['PAGESIZE'], { encoding: 'utf8' });
  if (r.status === 0 && Number(r.stdout) > 0) pageSize = Number(r.stdout);
} catch { /* keep 4096 */ }

/** Process groups of the commands now running, so an interrupt can stop them. */
export const running = new Set();

export function hasGnuTime() {
  if (!existsSync(GNU_TIME)) return false;
  const r = spawnSync(GNU_TIME, ['-f', '%M', 'true'], { encoding: 'utf8' });
  return r.status === 0 && /^\d+\s*$/m.test(r.stderr);
}

/** One pass over /proc: RSS (KiB) of every process and the children of every process. */
function scanProc() {
  const kids = new Map();
  const rss = new Map();
  let names;
  try { names = readdirSync('/proc'); } catch { return { kids, rss }; }
  for (const name of names) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    let s;
    try { s = readFileSync(`/proc/${name}/stat`, 'latin1'); } catch { continue; }
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const pid = Number(name);
    const ppid = Number(f[1]);
    rss.set(pid, Number(f[21]) * pageSize / 1024);
    if (!kids.has(ppid)) kids.set(ppid, []);
    kids.get(ppid).push(pid);
  }
  return { kids, rss };
}

function sumTree({ kids, rss }, rootPid, includeRoot) {
  let total = includeRoot ? (rss.get(rootPid) ?? 0) : 0;
  const stack = [...(kids.get(rootPid) ?? [])];
  while (stack.length > 0) {
    const p = stack.pop();
    total += rss.get(p) ?? 0;
    for (const c of kids.get(p) ?? []) stack.push(c);
  }
  return total;
}

/** Sum of RSS (KiB) over all descendants of rootPid; includeRoot adds rootPid itself. */
function treeRssKiB(rootPid, includeRoot) {
  return sumTree(scanProc(), rootPid, includeRoot);
}

/** RSS (KiB) of each process tree (root included), from one pass over /proc: Map root -> KiB. */
export function treesRssKiB(rootPids) {
  const scan = scanProc();
  return new Map(rootPids.map((pid) => [pid, sumTree(scan, pid, true)]));
}

/** CPU seconds { user, system } (all threads) a process has used so far; null if unknown. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 }; // utime, stime (fields 14, 15) in USER_HZ (100) ticks
  } catch { return null; }
}

/** Reset a process's peak RSS (VmHWM) to its current RSS (Linux clear_refs "5"); false if refused. */
export function resetPeakRss(pid) {
  try { writeFileSync(`/proc/${pid}/clear_refs`, '5'); return true; } catch { return false; }
}

/** A process's peak RSS (VmHWM, KiB) since start or since resetPeakRss; null if unknown. */
export function peakRssKiB(pid) {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

/**
 * Sample the RSS of several process trees every 100 ms until stop(); stop() returns
 * { perRootKiB: Map root -> peak of that tree, sumKiB: peak of the sum over all trees at one instant }.
 */
export function sampleTrees(rootPids) {
  const per = new Map(rootPids.map((p) => [p, 0]));
  let sum = 0;
  const tick = () => {
    let now = 0;
    for (const [pid, kib] of treesRssKiB(rootPids)) {
      now += kib;
      if (kib > per.get(pid)) per.set(pid, kib);
    }
    if (now > sum) sum = now;
  };
  tick();
  const timer = setInterval(tick, POLL_MS);
  return { stop() { clearInterval(timer); tick(); return { perRootKiB: per, sumKiB: sum }; } };
}

function appendCapped(buf, chunk, cap, keepTail) {
  buf.parts.push(chunk);
  buf.len += chunk.length;
  if (buf.len > cap) {
    const all = Buffer.concat(buf.parts);
    const kept = keepTail ? all.subarray(all.length - cap) : all.subarray(0, cap);
    buf.parts = [kept];
    buf.len = kept.length;
    buf.truncated = true;
  }
}

let seq = 0;

/**
 * Run one command.
 * opts: { env, cwd, timeoutS, measure, useTime, okCodes, stdoutToNull }
 * Returns { ok, code, signal, timedOut, seconds, stdout, stderr, peakRssKiB, rssTimeKiB, rssTreeKiB,
 * cpuUserSeconds, cpuSystemSeconds (from GNU time; null without it), error }.
 */
export function run(cmd, args, opts = {}) {
  const { env = process.env, cwd = process.cwd(), timeoutS = 3600, measure = false,
    useTime = true, okCodes = [0] } = opts;
  const timeFile = join(tmpdir(), `p2pbak-bench-time-${process.pid}-${seq++}.txt`);
  const withTime = measure && useTime;
  // %M peak RSS (KiB), %U %S the user and system CPU seconds of the command (its rusage, children waited for included)
  const argv = withTime ? [GNU_TIME, '-f', '%M %U %S', '-o', timeFile, cmd, ...args] : [cmd, ...args];
  return new Promise((resolve) => {
    const out = { parts: [], len: 0, truncated: false };
    const err = { parts: [], len: 0, truncated: false };
    const t0 = process.hrtime.bigint();
    let child;
    try {
      child = spawn(argv[0], argv.slice(1), { env, cwd, detached: true,
        stdio: ['ignore', opts.stdoutToNull ? 'ignore' : 'pipe', 'pipe'] });
    } catch (e) {
      resolve({ ok: false, code: null, signal: null, timedOut: false, seconds: 0, stdout: '',
        stderr: '', error: String(e) });
      return;
    }
    running.add(child.pid);
    let treePeak = 0;
    const poll = measure ? setInterval(() => {
      const v = treeRssKiB(child.pid, !withTime);
      if (v > treePeak) treePeak = v;
    }, POLL_MS) : null;
    let timedOut = false;
    let killer2 = null;
    const killer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      killer2 = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 10_000);
    }, timeoutS * 1000);
    child.stdout?.on('data', (c) => appendCapped(out, c, STDOUT_CAP, false));
    child.stderr.on('data', (c) => appendCapped(err, c, STDERR_CAP, true));
    let spawnError = null;
    child.on('error', (e) => { spawnError = String(e); });
    child.on('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      running.delete(child.pid);
      if (poll) clearInterval(poll);
      clearTimeout(killer);
      if (killer2) clearTimeout(killer2);
      let rssTime = null;
      let cpuUser = null;
      let cpuSys = null;
      if (withTime && existsSync(timeFile)) {
        // GNU time writes "Command exited with non-zero status N" first when it did: the figures are the last line
        const lines = readFileSync(timeFile, 'utf8').trim().split('\n');
        const [m, u, sy] = (lines[lines.length - 1] ?? '').trim().split(/\s+/).map(Number);
        if (Number.isFinite(m)) rssTime = m;
        if (Number.isFinite(u) && Number.isFinite(sy)) { cpuUser = u; cpuSys = sy; }
        rmSync(timeFile, { force: true });
      }
      const stderr = Buffer.concat(err.parts).toString('utf8');
      const stdout = Buffer.concat(out.parts).toString('utf8');
      const peak = measure ? Math.max(rssTime ?? 0, treePeak) : null;
      resolve({
        ok: !timedOut && spawnError === null && okCodes.includes(code),
        code, signal, timedOut, seconds, stdout, stderr,
        stdoutTruncated: out.truncated, stderrTruncated: err.truncated,
        peakRssKiB: peak, rssTimeKiB: rssTime, rssTreeKiB: measure ? treePeak : null,
        cpuUserSeconds: cpuUser, cpuSystemSeconds: cpuSys,
        error: spawnError ?? (timedOut ? `timed out after ${timeoutS} s` : null),
      });
    });
  });
}

/** Run quietly and return trimmed stdout, or null on failure. */
export function capture(cmd, args, opts = {}) {
  try {
    const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20, ...opts });
    return r.status === 0 ? r.stdout.trim() : null;
  } catch { return null; }
}

/** Apparent size in bytes (du -sb); 0 if the path does not exist, null on error. */
export function duBytes(path) {
  if (!existsSync(path)) return 0;
  const s = capture('du', ['-sb', path]);
  if (s === null) return null;
  return Number(s.split('\t')[0]);
}

export function which(name) {
  return capture('sh', ['-c', `command -v ${name}`]);
}

/** Last part of a command's stderr, for failure reports. */
export function tail(text, lines = 25) {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}
