import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import fc from 'fast-check'
import { fallback, fsetxattrs, futimesNs, lgetxattrs, lsetxattrs, lutimesNs, nativeAt, nativeAvailable } from '../../../src/backup/fsx.js'

const NS = 1_000_000_000n
/** Odd values: sub-µs digits, beyond 2038 (32-bit time_t), and before 1970 (floor, not truncation). */
const TIMES: ReadonlyArray<{ name: string, mtime: bigint, atime: bigint }> = [
  { name: '2023 with odd nanoseconds', mtime: 1700000000123456789n, atime: 1600000000987654321n },
  { name: '2100 (after 2038)', mtime: 4102444800999999999n, atime: 4102444800000000001n },
  { name: '1966 (before 1970)', mtime: -123456789012345678n, atime: -1n },
  { name: 'the epoch', mtime: 0n, atime: 999n }
]
/**
 * Inside the ext4 timestamp range (1901-12-13 .. 2446-05-10), where a set time must read back unchanged.
 * The kernel clamps to the range and zeroes the nanoseconds of its two end seconds, so both are left out.
 */
const EXT4_MIN = (-(2n ** 31n) + 1n) * NS
const EXT4_MAX = 15032385534n * NS + NS - 1n

const floorMicros = (ns: bigint): bigint => (ns >= 0n ? ns / 1000n : -((-ns + 999n) / 1000n)) * 1000n
const kinds = ['file', 'directory', 'symlink'] as const
type Kind = typeof kinds[number]

describe('backup/fsx', function () {
  let dir: string
  let seq = 0
  const fresh = (kind: Kind): { p: string, target?: string } => {
    const p = path.join(dir, `${kind}-${seq++}`)
    if (kind === 'file') fs.writeFileSync(p, 'content')
    if (kind === 'directory') fs.mkdirSync(p)
    if (kind !== 'symlink') return { p }
    const target = `${p}.target`
    fs.writeFileSync(target, 'target')
    fs.symlinkSync(path.basename(target), p)
    return { p, target }
  }

  before(function () { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pbak-fsx-')) })
  after(function () { fs.rmSync(dir, { recursive: true, force: true }) })

  it('loads the native addon (build it with `npm ci` or `node-gyp rebuild --nodedir=/usr`)', function () {
    assert.equal(nativeAvailable, true)
  })

  describe('lutimesNs with the addon', function () {
    for (const kind of kinds) {
      for (const t of TIMES) {
        it(`sets exact nanoseconds on a ${kind}: ${t.name}`, function () {
          const { p, target } = fresh(kind)
          const targetBefore = target === undefined ? undefined : fs.statSync(target, { bigint: true })
          lutimesNs(p, t.atime, t.mtime)
          const st = fs.lstatSync(p, { bigint: true })
          assert.equal(st.mtimeNs, t.mtime)
          assert.equal(st.atimeNs, t.atime)
          if (target !== undefined && targetBefore !== undefined) {
            const after = fs.statSync(target, { bigint: true })
            assert.equal(after.mtimeNs, targetBefore.mtimeNs, 'the symlink target must keep its mtime')
            assert.equal(after.atimeNs, targetBefore.atimeNs, 'the symlink target must keep its atime')
          }
        })
      }
    }

    it('round-trips any time in the filesystem range (property)', function () {
      const { p } = fresh('file')
      fc.assert(fc.property(fc.bigInt(EXT4_MIN, EXT4_MAX), fc.bigInt(EXT4_MIN, EXT4_MAX), (a, m) => {
        lutimesNs(p, a, m)
        const st = fs.lstatSync(p, { bigint: true })
        return st.mtimeNs === m && st.atimeNs === a
      }), { seed: 20251122, numRuns: 300 })
    })

    it('throws a Node-style ENOENT error for a missing path', function () {
      const missing = path.join(dir, 'missing')
      assert.throws(() => { lutimesNs(missing, 1n, 1n) },
        { code: 'ENOENT', errno: -2, syscall: 'utimensat', path: missing })
    })

    it('rejects a NUL byte in the path like node:fs does', function () {
      assert.throws(() => { lutimesNs(path.join(dir, 'a\0b'), 1n, 1n) }, { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' })
    })

    it('rejects seconds that do not fit in time_t', function () {
      const { p } = fresh('file')
      assert.throws(() => { lutimesNs(p, 0n, 2n ** 64n * NS) }, { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' })
    })
  })

  describe('lutimesNs fallback (no addon)', function () {
    for (const kind of kinds) {
      for (const t of TIMES) {
        it(`rounds down to whole microseconds on a ${kind}: ${t.name}`, function () {
          const { p, target } = fresh(kind)
          const targetBefore = target === undefined ? undefined : fs.statSync(target, { bigint: true })
          fallback.lutimesNs(p, t.atime, t.mtime)
          const st = fs.lstatSync(p, { bigint: true })
          assert.equal(st.mtimeNs, floorMicros(t.mtime))
          assert.equal(st.atimeNs, floorMicros(t.atime))
          if (target !== undefined && targetBefore !== undefined) {
            assert.equal(fs.statSync(target, { bigint: true }).mtimeNs, targetBefore.mtimeNs)
          }
        })
      }
    }

    it('lands on floor(ns / 1000) µs for any time from 1901 to 2242 (property)', function () {
      const { p } = fresh('file')
      fc.assert(fc.property(fc.bigInt(EXT4_MIN, 2n ** 33n * NS - 1n), (m) => {
        fallback.lutimesNs(p, m, m)
        return fs.lstatSync(p, { bigint: true }).mtimeNs === floorMicros(m)
      }), { seed: 20251122, numRuns: 300 })
    })
  })

  describe('calls on a descriptor and relative to an open directory', function () {
    it('futimesNs sets exact nanoseconds on an open file and directory; the fallback whole microseconds', function () {
      for (const kind of ['file', 'directory'] as const) {
        const { p } = fresh(kind)
        const fd = fs.openSync(p, fs.constants.O_RDONLY)
        try {
          for (const t of TIMES) {
            futimesNs(fd, t.atime, t.mtime)
            let st = fs.fstatSync(fd, { bigint: true })
            assert.equal(st.mtimeNs, t.mtime)
            assert.equal(st.atimeNs, t.atime)
            fallback.futimesNs(fd, t.atime, t.mtime)
            st = fs.fstatSync(fd, { bigint: true })
            assert.equal(st.mtimeNs, floorMicros(t.mtime))
          }
        } finally {
          fs.closeSync(fd)
        }
      }
    })

    it('fsetxattrs sets user.* through the descriptor and reports failures by code', function () {
      const { p } = fresh('file')
      const fd = fs.openSync(p, fs.constants.O_RDONLY)
      try {
        const failed = fsetxattrs(fd, [{ name: Buffer.from('user.p2pbak'), value: Buffer.from([0, 1, 2]) }, { name: Buffer.from('bogus.ns'), value: Buffer.from('x') }])
        if (failed.some(f => f.name.toString() === 'user.p2pbak' && f.code === 'ENOTSUP')) this.skip() // no xattrs on this filesystem
        assert.deepEqual(failed.map(f => f.name.toString()), ['bogus.ns'])
        assert.deepEqual(lgetxattrs(p).map(x => [x.name.toString(), [...x.value]]), [['user.p2pbak', [0, 1, 2]]])
      } finally {
        fs.closeSync(fd)
      }
    })

    it('the *at calls resolve a name in the open directory, never follow a symlink there, and throw Node-style errors', function () {
      const at = nativeAt
      assert.ok(at !== undefined, 'the addon lacks the *at calls: rebuild it')
      const d = path.join(dir, `at-${seq++}`)
      fs.mkdirSync(d)
      const dfd = fs.openSync(d, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
      try {
        at.mkdirat(dfd, Buffer.from('sub'), 0o750)
        assert.ok(fs.statSync(path.join(d, 'sub')).isDirectory())
        at.symlinkat(Buffer.from('/'), dfd, Buffer.from('link'))
        assert.equal(fs.readlinkSync(path.join(d, 'link')), '/')
        assert.throws(() => at.openat(dfd, Buffer.from('link'), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW, 0),
          (err: Error & { code?: string, syscall?: string }) => err.code === 'ELOOP' && err.syscall === 'openat')
        const fd = at.openat(dfd, Buffer.from('f'), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o640)
        fs.writeSync(fd, 'data')
        fs.closeSync(fd)
        assert.equal(fs.readFileSync(path.join(d, 'f'), 'utf8'), 'data')
        at.linkat(dfd, Buffer.from('f'), dfd, Buffer.from('g'))
        assert.equal(fs.statSync(path.join(d, 'g')).nlink, 2)
        at.mkfifoat(dfd, Buffer.from('pipe'), 0o600)
        assert.ok(fs.lstatSync(path.join(d, 'pipe')).isFIFO())
        at.lutimensat(dfd, Buffer.from('link'), 1n, 2, 3n, 4)
        assert.equal(fs.lstatSync(path.join(d, 'link'), { bigint: true }).mtimeNs, 3_000_000_004n)
        at.lchownat(dfd, Buffer.from('link'), process.getuid?.() ?? 0, process.getgid?.() ?? 0)
        at.unlinkat(dfd, Buffer.from('link'), 0)
        assert.throws(() => at.unlinkat(dfd, Buffer.from('sub'), 0), (err: Error & { code?: string }) => err.code === 'EISDIR')
        assert.throws(() => at.mkdirat(dfd, Buffer.from('sub'), 0o700), (err: Error & { code?: string }) => err.code === 'EEXIST')
        assert.deepEqual(fs.readdirSync(d).sort(), ['f', 'g', 'pipe', 'sub'])
      } finally {
        fs.closeSync(dfd)
      }
    })
  })

  describe('non-UTF-8 file names', function () {
    it('sets times on a name with byte 0xff given as a Buffer', function () {
      const name = Buffer.from([0x66, 0xff, 0x6f, 0xfe])
      const p = Buffer.concat([Buffer.from(dir + path.sep), name])
      fs.writeFileSync(p, 'x')
      assert.ok(fs.readdirSync(dir, { encoding: 'buffer' }).some(n => n.equals(name)))
      lutimesNs(p, 1700000000000000001n, 1700000000123456789n)
      assert.equal(fs.lstatSync(p, { bigint: true }).mtimeNs, 1700000000123456789n)
      fallback.lutimesNs(p, 5n, 1700000000123456789n)
      assert.equal(fs.lstatSync(p, { bigint: true }).mtimeNs, 1700000000123456000n)
    })
  })

  describe('extended attributes', function () {
    let unsupported = false
    before(function () {
      const { p } = fresh('file')
      const failed = lsetxattrs(p, [{ name: Buffer.from('user.p2pbak-probe'), value: Buffer.from('1') }])
      unsupported = failed.length === 1 && failed[0]?.code === 'ENOTSUP'
    })
    beforeEach(function () {
      if (unsupported) {
        // Only reason to skip: the filesystem under os.tmpdir() answered ENOTSUP to a user.* xattr.
        this.skip()
      }
    })

    it('round-trips a binary value under user.p2pbak', function () {
      const { p } = fresh('file')
      const value = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i))
      assert.deepEqual(lsetxattrs(p, [{ name: Buffer.from('user.p2pbak'), value }]), [])
      const got = lgetxattrs(p).find(a => a.name.equals(Buffer.from('user.p2pbak')))
      assert.ok(got !== undefined, 'user.p2pbak must be listed')
      assert.ok(Buffer.isBuffer(got.name) && Buffer.isBuffer(got.value))
      assert.deepEqual(got.value, value)
    })

    it('round-trips many names, an empty value and non-UTF-8 name bytes', function () {
      const { p } = fresh('directory')
      const attrs = Array.from({ length: 40 }, (_, i) => ({ name: Buffer.from(`user.n${i}`), value: Buffer.alloc(i * 3, i) }))
      attrs.push({ name: Buffer.from([...Buffer.from('user.'), 0xff, 0x80]), value: Buffer.from([0]) })
      assert.deepEqual(lsetxattrs(p, attrs), [])
      const got = lgetxattrs(p).filter(a => a.name.subarray(0, 5).toString() === 'user.')
      const key = (a: { name: Buffer }): string => a.name.toString('hex')
      assert.deepEqual(got.sort((x, y) => key(x).localeCompare(key(y))), attrs.sort((x, y) => key(x).localeCompare(key(y))))
    })

    it('works on a non-UTF-8 path', function () {
      const p = Buffer.concat([Buffer.from(dir + path.sep), Buffer.from([0x78, 0xff])])
      fs.writeFileSync(p, 'x')
      assert.deepEqual(lsetxattrs(p, [{ name: Buffer.from('user.p2pbak'), value: Buffer.from([1, 2, 3]) }]), [])
      assert.deepEqual(lgetxattrs(p).find(a => a.name.toString() === 'user.p2pbak')?.value, Buffer.from([1, 2, 3]))
    })

    it('reads the symlink itself, not its target', function () {
      const { p, target } = fresh('symlink')
      assert.ok(target !== undefined)
      assert.deepEqual(lsetxattrs(target, [{ name: Buffer.from('user.p2pbak'), value: Buffer.from('t') }]), [])
      assert.equal(lgetxattrs(p).some(a => a.name.toString() === 'user.p2pbak'), false)
      // Linux allows no user.* attributes on symlinks: reported, not thrown, and the target is untouched.
      assert.deepEqual(lsetxattrs(p, [{ name: Buffer.from('user.other'), value: Buffer.from('l') }]).map(f => f.code), ['EPERM'])
      assert.equal(lgetxattrs(target).some(a => a.name.toString() === 'user.other'), false)
    })

    it('returns failures with their errno code and still sets the other names', function () {
      const { p } = fresh('file')
      const failed = lsetxattrs(p, [
        { name: Buffer.from('bogus.namespace'), value: Buffer.from('x') },
        { name: Buffer.from('user.ok'), value: Buffer.from('y') },
        { name: Buffer.from('user.\0nul'), value: Buffer.from('z') }
      ])
      assert.deepEqual(failed, [
        { name: Buffer.from('bogus.namespace'), code: 'ENOTSUP' },
        { name: Buffer.from('user.\0nul'), code: 'EINVAL' }
      ])
      assert.deepEqual(lgetxattrs(p).find(a => a.name.toString() === 'user.ok')?.value, Buffer.from('y'))
      const missing = path.join(dir, 'missing')
      assert.deepEqual(lsetxattrs(missing, [{ name: Buffer.from('user.a'), value: Buffer.alloc(0) }]),
        [{ name: Buffer.from('user.a'), code: 'ENOENT' }])
    })

    it('throws a Node-style error when the path cannot be listed', function () {
      const missing = path.join(dir, 'missing')
      assert.throws(() => lgetxattrs(missing), { code: 'ENOENT', errno: -2, syscall: 'llistxattr', path: missing })
    })
  })

  describe('fallback xattrs (no addon)', function () {
    it('lists nothing and reports every name as ENOTSUP', function () {
      const { p } = fresh('file')
      assert.deepEqual(fallback.lgetxattrs(p), [])
      assert.deepEqual(fallback.lsetxattrs(p, [{ name: new Uint8Array([0x75]), value: new Uint8Array() }]),
        [{ name: Buffer.from([0x75]), code: 'ENOTSUP' }])
    })
  })

  describe('loading', function () {
    const source = fileURLToPath(new URL('../../../src/backup/fsx.ts', import.meta.url))
    const cases: ReadonlyArray<{ name: string, addon?: Buffer }> = [
      { name: 'without build/Release/fsx.node' },
      { name: 'with a corrupt build/Release/fsx.node', addon: Buffer.from('not an ELF file') }
    ]
    for (const tc of cases) {
      it(`imports without throwing and falls back ${tc.name}`, async function () {
        const root = path.join(dir, `pkg-${seq++}`)
        fs.mkdirSync(path.join(root, 'src', 'backup'), { recursive: true })
        fs.copyFileSync(source, path.join(root, 'src', 'backup', 'fsx.ts'))
        if (tc.addon !== undefined) {
          fs.mkdirSync(path.join(root, 'build', 'Release'), { recursive: true })
          fs.writeFileSync(path.join(root, 'build', 'Release', 'fsx.node'), tc.addon)
        }
        const mod: unknown = await import(pathToFileURL(path.join(root, 'src', 'backup', 'fsx.ts')).href)
        assert.ok(typeof mod === 'object' && mod !== null && 'nativeAvailable' in mod && 'lgetxattrs' in mod)
        assert.equal(mod.nativeAvailable, false)
        assert.ok(typeof mod.lgetxattrs === 'function')
        assert.deepEqual(mod.lgetxattrs(path.join(root, 'src')), [])
      })
    }
  })
})
