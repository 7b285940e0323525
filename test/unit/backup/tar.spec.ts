/**
 * src/backup/tar.ts: ustar headers plus pax extended headers, checked against the system's GNU tar
 * (names around the 100-byte ustar limit, pax record lengths across digit boundaries, times before 1970
 * and with nanoseconds, ids beyond the octal fields, non-UTF-8 names) and by parsing the pax records back.
 */
import assert from 'node:assert/strict'
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { BLOCK, padding, tarEnd, tarHeader, type TarEntry } from '../../../src/backup/tar.js'

const FC = { seed: 20261214, numRuns: 200 }

function fileEntry (path: Buffer | string, content: Buffer, extra: Partial<TarEntry> = {}): Buffer {
  const e: TarEntry = { path: Buffer.from(path), type: 'file', mode: 0o640, uid: 0, gid: 0, size: content.length, mtimeNs: 1_700_000_000_000_000_000n, ...extra }
  return Buffer.concat([tarHeader(e), content, Buffer.alloc(padding(content.length))])
}

/** The pax records of an archive that starts with a pax header. */
function paxRecords (archive: Buffer): Map<string, Buffer> {
  assert.equal(String.fromCharCode(archive[156] ?? 0), 'x')
  const size = parseInt(archive.subarray(124, 135).toString('latin1'), 8)
  const body = archive.subarray(BLOCK, BLOCK + size)
  const out = new Map<string, Buffer>()
  let pos = 0
  while (pos < body.length) {
    const sp = body.indexOf(0x20, pos)
    const len = Number(body.subarray(pos, sp).toString('latin1'))
    const rec = body.subarray(sp + 1, pos + len)
    assert.equal(rec[rec.length - 1], 0x0a, 'a record ends with a newline exactly at its stated length')
    const eq = rec.indexOf(0x3d)
    out.set(rec.subarray(0, eq).toString('latin1'), rec.subarray(eq + 1, rec.length - 1))
    pos += len
  }
  return out
}

describe('tar writer (ustar + pax)', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'p2pbak-tar-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })

  const untar = (archive: Buffer): void => {
    const r = spawnSync('tar', ['-x', '-p', '-f', '-', '-C', dir], { input: archive })
    assert.equal(r.status, 0, r.stderr.toString())
  }

  it('every header block has a valid checksum and the archive ends with two zero blocks', () => {
    const a = fileEntry('a.txt', Buffer.from('hi'))
    const h = a.subarray(0, BLOCK)
    let sum = 0
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] ?? 0)
    assert.equal(parseInt(h.subarray(148, 154).toString('latin1'), 8), sum)
    assert.equal(h.subarray(257, 263).toString('latin1'), 'ustar\u0000')
    assert.ok(tarEnd().equals(Buffer.alloc(1024)))
  })

  it('names of 99, 100, 101 and 300 bytes, a long link target and a long non-UTF-8 name come back whole from GNU tar', () => {
    // at most 255 bytes a component (Linux NAME_MAX)
    const names = ['d0/' + 'x'.repeat(96), 'd0/' + 'x'.repeat(97), 'd0/' + 'x'.repeat(98), `d3/${'y'.repeat(150)}/${'x'.repeat(146)}`]
    const latin = Buffer.concat([Buffer.from('n'.repeat(120)), Buffer.from([0xe9, 0xff])])
    const parts: Buffer[] = []
    parts.push(tarHeader({ path: Buffer.from('d0'), type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtimeNs: 0n }))
    for (const n of names) parts.push(fileEntry(n, Buffer.from(n)))
    parts.push(fileEntry(latin, Buffer.from('latin')))
    const target = 't'.repeat(150)
    parts.push(tarHeader({ path: Buffer.from('link'), type: 'symlink', linkPath: Buffer.from(target), mode: 0o777, uid: 0, gid: 0, size: 0, mtimeNs: 0n }))
    parts.push(tarHeader({ path: Buffer.from('hard'), type: 'hardlink', linkPath: Buffer.from(names[3] as string), mode: 0o640, uid: 0, gid: 0, size: 0, mtimeNs: 0n }))
    parts.push(tarEnd())
    untar(Buffer.concat(parts))
    assert.deepEqual(names.map(n => n.length), [99, 100, 101, 300])
    for (const n of names) assert.equal(readFileSync(join(dir, n), 'utf8'), n, `${n.length} bytes`)
    assert.equal(readFileSync(Buffer.concat([Buffer.from(dir + '/'), latin])).toString(), 'latin')
    assert.equal(readlinkSync(join(dir, 'link')), target)
    assert.equal(lstatSync(join(dir, 'hard')).ino, lstatSync(join(dir, names[3] as string)).ino)
  })

  it('keeps modes with setuid, setgid and sticky bits, ids beyond the octal fields, and times to the nanosecond, before 1970 too', () => {
    const times = [1_700_000_000_123_456_789n, -86_400_000_000_001n, 4_102_444_800_999_999_999n, 0n, 5n]
    const parts = times.map((t, i) => fileEntry(`t${i}`, Buffer.from(String(i)), { mtimeNs: t, mode: [0o4755, 0o2750, 0o1777, 0o600, 0o444][i] ?? 0o644 }))
    parts.push(fileEntry('big-ids', Buffer.from('ids'), { uid: 3_000_000, gid: 4_000_000 }))
    untar(Buffer.concat([...parts, tarEnd()]))
    times.forEach((t, i) => {
      const st = lstatSync(join(dir, `t${i}`), { bigint: true })
      assert.equal(st.mtimeNs, t, `t${i}`)
      assert.equal(Number(st.mode & 0o7777n), [0o4755, 0o2750, 0o1777, 0o600, 0o444][i])
    })
    if (process.getuid?.() === 0) {
      const st = lstatSync(join(dir, 'big-ids'))
      assert.deepEqual([st.uid, st.gid], [3_000_000, 4_000_000])
    }
  })

  it('pax records state their own length exactly, across digit boundaries', () => {
    fc.assert(fc.property(fc.integer({ min: 101, max: 1100 }), fc.integer({ min: 0, max: 999_999_999 }), (n, ns) => {
      const path = Buffer.from('p'.repeat(n))
      const archive = tarHeader({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtimeNs: 1_000_000_000n + BigInt(ns) })
      const recs = paxRecords(archive)
      assert.ok(recs.get('path')?.equals(path))
      assert.equal(recs.get('mtime')?.toString(), `1.${String(ns).padStart(9, '0')}`)
      assert.equal(archive.length % BLOCK, 0)
    }), FC)
  })

  it('writes names that are not UTF-8 as raw bytes, without hdrcharset (as GNU tar does)', () => {
    const path = Buffer.concat([Buffer.alloc(120, 0x61), Buffer.from([0xff])])
    const raw = paxRecords(tarHeader({ path, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtimeNs: 0n }))
    assert.ok(raw.get('path')?.equals(path))
    assert.equal(raw.has('hdrcharset'), false)
  })
})
