// Everything the benchmark needs before it can time anything: paths, system packages,
// machine facts, the cached corpus, and the warm-up read.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { capture, duBytes, hasGnuTime, which } from './proc.mjs';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BENCH_DIR = join(REPO_ROOT, '.bench');

export function sharedDir() {
  return process.env.P2PBAK_SHARED ? resolve(process.env.P2PBAK_SHARED) : resolve(REPO_ROOT, '..', 'shared');
}

/** Benchmark settings from the environment. */
export function readConfig() {
  const scaleText = process.env.BENCH_SCALE ?? '1';
  const seedText = process.env.BENCH_SEED ?? '42';
  const scale = Number(scaleText);
  const seed = Number(seedText);
  if (!(scale > 0) || !Number.isFinite(scale)) throw new Error(`BENCH_SCALE must be a positive number, got ${scaleText}`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`BENCH_SEED must be a non-negative integer, got ${seedText}`);
  const tools = (process.env.BENCH_TOOLS ?? 'p2pbak,restic,borg').split(',').map((s) => s.trim()).filter(Boolean);
  const timeoutS = Number(process.env.BENCH_TIMEOUT_S ?? Math.max(300, Math.round(3600 * scale)));
  // the group step runs unless BENCH_GROUP=0; with BENCH_TOOLS lacking p2pbak only if BENCH_GROUP=1
  const groupText = process.env.BENCH_GROUP;
  // the small-commands step runs unless BENCH_SMALL=0; BENCH_SMALL_ONLY=1 runs it and only the backups it needs
  const smallOnly = process.env.BENCH_SMALL_ONLY === '1';
  const group = smallOnly ? false : groupText === undefined || groupText === '' ? tools.includes('p2pbak') : groupText !== '0';
  const smallRuns = Number(process.env.BENCH_SMALL_RUNS ?? 7);
  // rounds of the local steps; one when only the small commands run (they need one set of repositories)
  const rounds = smallOnly ? 1 : Number(process.env.BENCH_ROUNDS ?? 3);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`BENCH_ROUNDS must be a positive integer, got ${process.env.BENCH_ROUNDS}`);
  if (!Number.isInteger(smallRuns) || smallRuns < 1) throw new Error(`BENCH_SMALL_RUNS must be a positive integer, got ${process.env.BENCH_SMALL_RUNS}`);
  return { scale, scaleText, seed, tools, timeoutS, group, keep: process.env.BENCH_KEEP === '1',
    strict: process.env.BENCH_STRICT === '1', small: smallOnly || process.env.BENCH_SMALL !== '0', smallOnly, smallRuns,
    smallDaemon: process.env.BENCH_SMALL_DAEMON !== '0', rounds };
}

function log(msg) { console.log(`[bench] ${msg}`); }

function aptInstall(packages, notes) {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    notes.push(`not root: cannot apt-get install ${packages.join(' ')}`);
    return false;
  }
  if (!which('apt-get')) { notes.push('apt-get not found'); return false; }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log(`apt-get update && apt-get install -y ${packages.join(' ')}`);
  const up = spawnSync('apt-get', ['update'], { env, encoding: 'utf8' });
  if (up.status !== 0) notes.push(`apt-get update failed: ${(up.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  const r = spawnSync('apt-get', ['install', '-y', ...packages], { env, encoding: 'utf8' });
  if (r.status !== 0) {
    notes.push(`apt-get install ${packages.join(' ')} failed: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
    return false;
  }
  return true;
}

/** Make sure GNU time, bsdtar, restic and borg are present where possible; returns notes. */
export function ensureSystemTools(wanted) {
  const notes = [];
  const missing = [];
  if (!hasGnuTime()) missing.push('time');
  if (!which('bsdtar')) missing.push('libarchive-tools');
  if (wanted.includes('restic') && !which('restic')) missing.push('restic');
  if (wanted.includes('borg') && !which('borg')) missing.push('borgbackup');
  if (missing.length > 0 && !aptInstall(missing, notes)) {
    // One package that fails must not keep the others out: try them one at a time.
    for (const p of missing) aptInstall([p], []);
  }
  if (!hasGnuTime()) notes.push('GNU time missing: peak RSS comes from /proc sampling only');
  if (!which('bsdtar')) notes.push('bsdtar missing: corpus built with NO_MANIFEST=1');
  if (wanted.includes('restic') && !which('restic')) notes.push('restic not installed: its column is empty');
  if (wanted.includes('borg') && !which('borg')) notes.push('borg not installed: its column is empty');
  return notes;
}

export function machineInfo(tmpRoot) {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    memGiB: Math.round(os.totalmem() / 2 ** 30 * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    os: (() => {
      try { return /PRETTY_NAME="([^"]*)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'unknown'; } catch { return 'unknown'; }
    })(),
    tmpFilesystem: capture('stat', ['-f', '-c', '%T', tmpRoot]),
    corpusFilesystem: capture('stat', ['-f', '-c', '%T', REPO_ROOT]),
  };
}

function treeStats(dir) {
  const count = (type) => Number(capture('sh', ['-c', 'find "$1" -type "$2" | wc -l', 'sh', dir, type]) ?? NaN);
  return { path: dir, apparentBytes: duBytes(dir), files: count('f'), dirs: count('d'), symlinks: count('l') };
}

/** Build (or reuse) the corpus; returns { dir, v1, v2, reused, seconds, stats }. */
export function ensureCorpus(cfg) {
  const dir = join(BENCH_DIR, `corpus-${cfg.seed}-${cfg.scaleText}`);
  const v1 = join(dir, 'v1');
  const v2 = join(dir, 'v2');
  let reused = true;
  let seconds = 0;
  if (!(existsSync(v1) && existsSync(v2))) {
    reused = false;
    const script = join(sharedDir(), 'bench', 'make-corpus.sh');
    if (!existsSync(script)) throw new Error(`corpus script not found: ${script} (set P2PBAK_SHARED)`);
    const partial = `${dir}.partial`;
    rmSync(partial, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(BENCH_DIR, { recursive: true });
    const env = { ...process.env };
    if (!which('bsdtar')) env.NO_MANIFEST = '1';
    log(`building corpus: ${script} ${partial} ${cfg.seed} ${cfg.scaleText}`);
    const t0 = Date.now();
    const r = spawnSync('bash', [script, partial, String(cfg.seed), cfg.scaleText], { env, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`make-corpus.sh failed with exit ${r.status}`);
    renameSync(partial, dir);
    seconds = (Date.now() - t0) / 1000;
  }
  return { dir, v1, v2, reused, seconds, stats: { v1: treeStats(v1), v2: treeStats(v2) } };
}

/** Read every file of the trees once so that every tool starts with a warm page cache. */
export function warmUp(dirs) {
  const t0 = Date.now();
  for (const d of dirs) {
    spawnSync('sh', ['-c', 'find "$1" -type f -exec cat {} + > /dev/null', 'sh', d], { stdio: 'ignore' });
  }
  return (Date.now() - t0) / 1000;
}
