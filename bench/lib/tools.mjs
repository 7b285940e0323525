// One adapter per backup tool. An adapter only describes commands; run.mjs executes and times them.
//
// Adapter shape:
//   name, settings (text for the report),
//   probe()                         -> { ok, version, reason }
//   context(tmp)                    -> ctx (paths and env for this run)
//   init(ctx)                       -> command
//   backup(ctx, path, label)        -> command
//   restore(ctx, target)            -> command (restores the most recent snapshot)
//   restoredRoot(target, path)      -> where the backed-up directory `path` lands under target
//   repoDirs(ctx)                   -> { repo: dir measured for growth, extra: { name: dir } }
//   summary(stdout)                 -> tool-reported figures of a backup, or null
// and, for the small-commands step (bench/lib/small.mjs), each optional:
//   version(ctx), list(ctx), ls(ctx, dir), find(ctx, pattern), restoreOne(ctx, target, file) -> command
//   (dir and file are absolute paths of v2; pattern is a plain word such as `sql`)
// and, for the many-small-files step (bench/lib/many.mjs), optional:
//   backupChanged(ctx, path, listFile) -> command (p2pbak's continuous mode, --changed-from)
// A command is { cmd, args, env, cwd?, okCodes }.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { capture, which } from './proc.mjs';
import { REPO_ROOT } from './setup.mjs';

const PASSWORD = 'bench-passphrase-not-secret';

function lastJson(stdout, pred = () => true) {
  const text = stdout.trim();
  try {
    const v = JSON.parse(text);
    if (pred(v)) return v;
  } catch { /* try line by line */ }
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const v = JSON.parse(lines[i]);
      if (pred(v)) return v;
    } catch { /* not JSON */ }
  }
  return null;
}

const P2PBAK_BIN = join(REPO_ROOT, 'bin', 'p2pbak.js');

/** The p2pbak adapter for the bin/p2pbak.js at `bin` (another build's, for before/after comparisons). */
export function p2pbakAt(bin, name = 'p2pbak') {
  const P2PBAK_BIN = bin;
  return {
    name,
    settings: 'defaults of this checkout; local store only (no peers); P2PBAK_PASSPHRASE set; ' +
      'repo growth = du -sb of the whole P2PBAK_HOME (store/ plus index and everything else)',
    probe() {
      const r = capture(process.execPath, [P2PBAK_BIN, '--help'], { cwd: REPO_ROOT });
      if (r === null) return { ok: false, reason: `\`node bin/p2pbak.js --help\` does not run` };
      let version = null;
      try { version = capture(process.execPath, [P2PBAK_BIN, '--version'], { cwd: REPO_ROOT }); } catch { /* none */ }
      return { ok: true, version: version ?? 'unknown' };
    },
    context(tmp) {
      const home = join(tmp, 'p2pbak-home');
      // the default key derivation, as users pay it: no test KDF from the caller's environment
      const { P2PBAK_KDF: _k, P2PBAK_INSECURE_TEST_KDF: _i, ...env } = process.env;
      return { home, env: { ...env, P2PBAK_HOME: home, P2PBAK_PASSPHRASE: PASSWORD } };
    },
    init(ctx) {
      return { cmd: process.execPath, args: [P2PBAK_BIN, 'init', '--json'], env: ctx.env, okCodes: [0] };
    },
    backup(ctx, path) {
      return { cmd: process.execPath, args: [P2PBAK_BIN, 'backup', path, '--json'], env: ctx.env, okCodes: [0, 3] };
    },
    /** continuous mode: only the paths listed in `listFile` changed since the latest snapshot of `path` */
    backupChanged(ctx, path, listFile) {
      return { cmd: process.execPath, args: [P2PBAK_BIN, 'backup', path, '--changed-from', listFile, '--json'], env: ctx.env,
        okCodes: [0, 3] };
    },
    restore(ctx, target) {
      return { cmd: process.execPath, args: [P2PBAK_BIN, 'restore', 'latest', '--target', target], env: ctx.env,
        okCodes: [0] };
    },
    snapshots(ctx) {
      return { cmd: process.execPath, args: [P2PBAK_BIN, 'snapshots', '--json'], env: ctx.env, okCodes: [0] };
    },
    version(ctx) { return { cmd: process.execPath, args: [P2PBAK_BIN, '--version'], env: ctx.env, okCodes: [0] }; },
    list(ctx) { return { cmd: process.execPath, args: [P2PBAK_BIN, 'snapshots'], env: ctx.env, okCodes: [0] }; },
    ls(ctx, dir) { return { cmd: process.execPath, args: [P2PBAK_BIN, 'ls', 'latest', dir], env: ctx.env, okCodes: [0] }; },
    find(ctx, pattern) { return { cmd: process.execPath, args: [P2PBAK_BIN, 'find', pattern], env: ctx.env, okCodes: [0] }; },
    restoreOne(ctx, target, file) {
      return { cmd: process.execPath, args: [P2PBAK_BIN, 'restore', 'latest', '--target', target, '--include', file],
        env: ctx.env, okCodes: [0] };
    },
    restoredRoot(target, path) { return join(target, path); },
    repoDirs(ctx) { return { repo: ctx.home, extra: { store: join(ctx.home, 'store') } }; },
    summary(stdout) {
      const v = lastJson(stdout, (o) => o !== null && typeof o === 'object' && 'snapshotId' in o);
      if (v === null) return null;
      return { snapshotId: v.snapshotId, filesNew: v.filesNew, filesChanged: v.filesChanged,
        filesUnchanged: v.filesUnchanged, bytesRead: v.bytesRead, bytesAdded: v.bytesAdded,
        errors: Array.isArray(v.errors) ? v.errors.length : v.errors };
    },
  };
}

export const p2pbak = p2pbakAt(P2PBAK_BIN);

export const restic = {
  name: 'restic',
  settings: 'Debian package; repo in a temp dir, RESTIC_PASSWORD set, default compression (auto, repo v2), ' +
    'cache in a separate temp dir (not counted in repo growth), --host bench',
  probe() {
    if (!which('restic')) return { ok: false, reason: 'restic not installed' };
    return { ok: true, version: capture('restic', ['version']) ?? 'unknown' };
  },
  context(tmp) {
    const repo = join(tmp, 'restic-repo');
    const cache = join(tmp, 'restic-cache');
    return { repo, cache, env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: PASSWORD,
      RESTIC_CACHE_DIR: cache } };
  },
  init(ctx) { return { cmd: 'restic', args: ['init'], env: ctx.env, okCodes: [0] }; },
  backup(ctx, path) {
    return { cmd: 'restic', args: ['backup', '--json', '--host', 'bench', path], env: ctx.env, okCodes: [0, 3] };
  },
  restore(ctx, target) {
    return { cmd: 'restic', args: ['restore', 'latest', '--target', target], env: ctx.env, okCodes: [0] };
  },
  version(ctx) { return { cmd: 'restic', args: ['version'], env: ctx.env, okCodes: [0] }; },
  list(ctx) { return { cmd: 'restic', args: ['snapshots'], env: ctx.env, okCodes: [0] }; },
  // p2pbak's `ls` is recursive; restic's only with --recursive
  ls(ctx, dir) { return { cmd: 'restic', args: ['ls', '--recursive', 'latest', dir], env: ctx.env, okCodes: [0] }; },
  // restic's find matches globs on names; p2pbak's is a fuzzy search of paths
  find(ctx, pattern) { return { cmd: 'restic', args: ['find', `*${pattern}*`], env: ctx.env, okCodes: [0] }; },
  restoreOne(ctx, target, file) {
    return { cmd: 'restic', args: ['restore', 'latest', '--target', target, '--include', file], env: ctx.env, okCodes: [0] };
  },
  restoredRoot(target, path) { return join(target, path); },
  repoDirs(ctx) { return { repo: ctx.repo, extra: { cache: ctx.cache } }; },
  summary(stdout) {
    const v = lastJson(stdout, (o) => o !== null && typeof o === 'object' && o.message_type === 'summary');
    if (v === null) return null;
    return { snapshotId: v.snapshot_id, filesNew: v.files_new, filesChanged: v.files_changed,
      filesUnchanged: v.files_unmodified, bytesRead: v.total_bytes_processed, bytesAdded: v.data_added };
  },
  extraInfo(ctx) {
    const cfg = capture('restic', ['cat', 'config'], { env: ctx.env });
    try { return cfg ? { repoVersion: JSON.parse(cfg).version } : {}; } catch { return {}; }
  },
};

export const borg = {
  name: 'borg',
  settings: 'Debian package; repo in a temp dir, --encryption=repokey (BORG_PASSPHRASE), default compression (lz4), ' +
    'BORG_BASE_DIR (cache, files cache, config) in a separate temp dir (not counted in repo growth); ' +
    'restore = borg extract run in the target dir',
  probe() {
    if (!which('borg')) return { ok: false, reason: 'borg not installed' };
    return { ok: true, version: capture('borg', ['--version']) ?? 'unknown' };
  },
  context(tmp) {
    const repo = join(tmp, 'borg-repo');
    const base = join(tmp, 'borg-base');
    mkdirSync(base, { recursive: true });
    return { repo, base, last: null, env: { ...process.env, BORG_REPO: repo, BORG_PASSPHRASE: PASSWORD,
      BORG_BASE_DIR: base, BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes', BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes' } };
  },
  init(ctx) { return { cmd: 'borg', args: ['init', '--encryption=repokey', ctx.repo], env: ctx.env, okCodes: [0] }; },
  backup(ctx, path, label) {
    ctx.last = label;
    // Exit 1 is borg's "warning" (e.g. a file changed while read); the archive is still written.
    return { cmd: 'borg', args: ['create', '--json', `${ctx.repo}::${label}`, path], env: ctx.env, okCodes: [0, 1] };
  },
  restore(ctx, target) {
    return { cmd: 'borg', args: ['extract', `${ctx.repo}::${ctx.last}`], env: ctx.env, cwd: target, okCodes: [0, 1] };
  },
  version(ctx) { return { cmd: 'borg', args: ['--version'], env: ctx.env, okCodes: [0] }; },
  list(ctx) { return { cmd: 'borg', args: ['list', ctx.repo], env: ctx.env, okCodes: [0] }; },
  // borg lists an archive's paths recursively, without the leading '/'
  ls(ctx, dir) {
    return { cmd: 'borg', args: ['list', `${ctx.repo}::${ctx.last}`, dir.replace(/^\/+/, '')], env: ctx.env, okCodes: [0] };
  },
  restoreOne(ctx, target, file) {
    return { cmd: 'borg', args: ['extract', `${ctx.repo}::${ctx.last}`, file.replace(/^\/+/, '')], env: ctx.env,
      cwd: target, okCodes: [0] };
  },
  restoredRoot(target, path) { return join(target, path.replace(/^\/+/, '')); },
  repoDirs(ctx) { return { repo: ctx.repo, extra: { base: ctx.base } }; },
  summary(stdout) {
    const v = lastJson(stdout, (o) => o !== null && typeof o === 'object' && 'archive' in o);
    if (v === null) return null;
    const s = v.archive?.stats ?? {};
    return { snapshotId: v.archive?.id, files: s.nfiles, bytesRead: s.original_size,
      bytesCompressed: s.compressed_size, bytesAdded: s.deduplicated_size };
  },
};

export const ADAPTERS = { p2pbak, restic, borg };
