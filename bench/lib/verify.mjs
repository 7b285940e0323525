// Checks that a restored tree equals the original: content with `diff -r --no-dereference`,
// metadata by comparing `find -printf` listings of both trees.
//
// Required (decides PASS/FAIL): same entries, type, permission bits, mtime to the second, symlink target.
// Reported only (informational): mtime to the nanosecond, owner/group, hard link counts of files.
import { spawnSync } from 'node:child_process';

const FIELDS = '%P\\0%y\\0%m\\0%T@\\0%l\\0%U\\0%G\\0%n\\0\\n';

function listing(root) {
  const r = spawnSync('find', [root, '-printf', FIELDS], { maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`find ${root} failed: ${r.stderr.toString().trim()}`);
  const map = new Map();
  const text = r.stdout.toString('utf8');
  let start = 0;
  while (start < text.length) {
    const f = [];
    for (let k = 0; k < 8; k++) {
      const end = text.indexOf('\0', start);
      f.push(text.slice(start, end));
      start = end + 1;
    }
    start += 1; // the newline after the record
    const [path, type, mode, mtime, link, uid, gid, nlink] = f;
    map.set(path, { type, mode, mtime, link, uid, gid, nlink: Number(nlink) });
  }
  return map;
}

const secs = (t) => t.split('.')[0];

/** Compare restored tree `got` against the original `want`. */
export function verifyTree(want, got, maxShown = 15) {
  const result = { ok: false, contentOk: false, metadataOk: false, entries: 0, problems: [], info: [] };
  const d = spawnSync('diff', ['-r', '--no-dereference', '-q', want, got], { maxBuffer: 64 << 20 });
  const diffOut = `${d.stdout.toString()}${d.stderr.toString()}`.trim();
  result.contentOk = d.status === 0;
  if (!result.contentOk) {
    const lines = diffOut.split('\n').filter(Boolean);
    result.problems.push(`diff -r exit ${d.status}: ${lines.length} line(s)`, ...lines.slice(0, maxShown));
  }
  let a, b;
  try {
    a = listing(want);
    b = listing(got);
  } catch (e) {
    result.problems.push(String(e));
    return result;
  }
  result.entries = a.size;
  const meta = [];
  const counts = { mtimeNs: 0, owner: 0, nlink: 0 };
  const infoSamples = [];
  for (const [p, x] of a) {
    const y = b.get(p);
    const name = p === '' ? '.' : p;
    if (!y) { meta.push(`missing: ${name}`); continue; }
    if (x.type !== y.type) { meta.push(`type ${x.type} -> ${y.type}: ${name}`); continue; }
    if (x.mode !== y.mode) meta.push(`mode ${x.mode} -> ${y.mode}: ${name}`);
    if (secs(x.mtime) !== secs(y.mtime)) meta.push(`mtime ${x.mtime} -> ${y.mtime}: ${name}`);
    if (x.link !== y.link) meta.push(`symlink target ${x.link} -> ${y.link}: ${name}`);
    if (x.mtime !== y.mtime) { counts.mtimeNs++; if (infoSamples.length < 5) infoSamples.push(`mtime(ns) ${x.mtime} -> ${y.mtime}: ${name}`); }
    if (x.uid !== y.uid || x.gid !== y.gid) counts.owner++;
    if (x.type === 'f' && x.nlink !== y.nlink) counts.nlink++;
  }
  for (const p of b.keys()) if (!a.has(p)) meta.push(`extra: ${p}`);
  result.metadataOk = meta.length === 0;
  if (!result.metadataOk) result.problems.push(`metadata: ${meta.length} difference(s)`, ...meta.slice(0, maxShown));
  result.info.push(`mtime differs at ns precision: ${counts.mtimeNs}`, `owner/group differs: ${counts.owner}`,
    `hard link count differs (files): ${counts.nlink}`, ...infoSamples);
  result.infoCounts = counts;
  result.ok = result.contentOk && result.metadataOk;
  return result;
}
