import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { FormatError } from '../../../src/errors.js'
import { decodeTree, encodeTree, FLAG_EXTENSIONS, NODE_TYPES, TREE_FORMAT_VERSION } from '../../../src/format/tree.js'
import type { NodeType, Tree, TreeNode, Xattr } from '../../../src/format/tree.js'
import { asChunkId, asTreeId } from '../../../src/ids.js'
import { ByteWriter, compareBytes, concatBytes, fromHex, toHex, utf8Encode } from '../../../src/util/bytes.js'
import { docExampleTree, nodeFromJson, severalKindsTree } from '../../vectors/generate-tree.js'
import type { TreeVector } from '../../vectors/generate-tree.js'

const SEED = 20240611
const I64 = { min: -(1n << 63n), max: (1n << 63n) - 1n }
const U64 = { min: 0n, max: (1n << 64n) - 1n }

// ---- arbitraries -------------------------------------------------------------------------------------------------
const nameByte = fc.integer({ min: 1, max: 255 }).filter(b => b !== 0x2f)
const nameArb = fc.oneof(
  fc.array(nameByte, { minLength: 1, maxLength: 24 }).map(a => Uint8Array.from(a)),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).map(s => utf8Encode(s.replace(/[/\0]/g, '_')))
).filter(n => n.byteLength > 0 && !(n[0] === 0x2e && (n.byteLength === 1 || (n.byteLength === 2 && n[1] === 0x2e))))
const idArb = fc.uint8Array({ minLength: 32, maxLength: 32 })
// a leading U+FEFF must survive (a BOM-stripping UTF-8 decoder would lose it)
const textArb = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ maxLength: 5 }).map(s => '\ufeff' + s))
const xattrsArb = fc.uniqueArray(
  fc.record({ name: fc.array(fc.integer({ min: 1, max: 255 }), { minLength: 1, maxLength: 16 }).map(a => Uint8Array.from(a)), value: fc.uint8Array({ maxLength: 24 }) }, { noNullPrototype: true }),
  { maxLength: 4, selector: x => toHex(x.name) }
)

function nodeArb (type: NodeType): fc.Arbitrary<TreeNode> {
  const typeFields: Record<string, fc.Arbitrary<unknown>> = {}
  if (type === 'file') {
    typeFields.size = fc.maxSafeNat()
    typeFields.content = fc.array(idArb.map(asChunkId), { maxLength: 5 })
    typeFields.sparse = fc.constant(true)
  }
  if (type === 'dir') typeFields.subtree = idArb.map(asTreeId)
  if (type === 'symlink') typeFields.linkTarget = fc.array(fc.integer({ min: 1, max: 255 }), { maxLength: 40 }).map(a => Uint8Array.from(a))
  if (type === 'chardev' || type === 'blockdev') typeFields.rdev = fc.bigInt(U64)
  return fc.record({
    name: nameArb,
    type: fc.constant(type),
    mode: fc.integer({ min: 0, max: 0o7777 }),
    uid: fc.integer({ min: 0, max: 0xffffffff }),
    gid: fc.integer({ min: 0, max: 0xffffffff }),
    user: textArb,
    group: textArb,
    size: fc.constant(0),
    mtimeNs: fc.bigInt(I64),
    atimeNs: fc.bigInt(I64),
    ctimeNs: fc.bigInt(I64),
    inode: fc.bigInt(U64),
    device: fc.bigInt(U64),
    links: fc.maxSafeNat(),
    xattrs: xattrsArb,
    changedDuringBackup: fc.constant(true),
    error: textArb,
    ...typeFields
  }, { noNullPrototype: true, requiredKeys: ['name', 'type', 'mode', 'uid', 'gid', 'size', 'mtimeNs', 'atimeNs', 'ctimeNs', 'inode', 'device', 'links'] }) as fc.Arbitrary<TreeNode>
}

const anyNodeArb = fc.oneof(...NODE_TYPES.map(nodeArb))
const treeArb: fc.Arbitrary<Tree> = fc.uniqueArray(anyNodeArb, { maxLength: 12, selector: n => toHex(n.name) }).map(nodes => ({ nodes }))

/** What decoding gives back: nodes and xattrs sorted by name bytes. */
function canonical (tree: Tree): Tree {
  const byName = (a: { name: Uint8Array }, b: { name: Uint8Array }): number => compareBytes(a.name, b.name)
  return { nodes: tree.nodes.map(n => n.xattrs === undefined ? n : { ...n, xattrs: [...n.xattrs].sort(byName) }).sort(byName) }
}

/** The grammar of docs/format/trees-and-snapshots.md §2.1, written plainly with util/bytes' ByteWriter. */
function referenceEncode (tree: Tree): Uint8Array {
  const nodes = canonical(tree).nodes
  const w = new ByteWriter().u8(1).uvarint(nodes.length)
  for (const n of nodes) {
    let flags = 0
    const opt = new ByteWriter()
    if (n.content !== undefined) { flags |= 1; opt.uvarint(n.content.length); for (const id of n.content) opt.raw(id) }
    if (n.subtree !== undefined) { flags |= 2; opt.raw(n.subtree) }
    if (n.user !== undefined) { flags |= 4; opt.string(n.user) }
    if (n.group !== undefined) { flags |= 8; opt.string(n.group) }
    if (n.linkTarget !== undefined) { flags |= 16; opt.bytes(n.linkTarget) }
    if (n.xattrs !== undefined) { flags |= 32; opt.uvarint(n.xattrs.length); for (const x of n.xattrs) opt.bytes(x.name).bytes(x.value) }
    if (n.rdev !== undefined) { flags |= 64; opt.uvarint(n.rdev) }
    if (n.sparse === true) flags |= 128
    if (n.changedDuringBackup === true) flags |= 256
    if (n.error !== undefined) { flags |= 512; opt.string(n.error) }
    w.bytes(n.name).u8(NODE_TYPES.indexOf(n.type) + 1).uvarint(flags)
    w.uvarint(n.mode).uvarint(n.uid).uvarint(n.gid).uvarint(n.size).uvarint(n.links)
    w.svarint(n.mtimeNs).svarint(n.atimeNs).svarint(n.ctimeNs).uvarint(n.inode).uvarint(n.device).raw(opt.finish())
  }
  return w.finish()
}

function throwsFormat (fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof FormatError && err.code === 'ERR_FORMAT')
}

const fileNode = (name: string, extra: Partial<TreeNode> = {}): TreeNode => ({
  name: utf8Encode(name), type: 'file', mode: 0o644, uid: 1, gid: 2, size: 3, mtimeNs: 4n, atimeNs: 5n, ctimeNs: 6n, inode: 7n, device: 8n, links: 1, ...extra
})

// ---- tests -------------------------------------------------------------------------------------------------------
describe('format/tree', () => {
  describe('golden vectors (test/vectors/tree.json)', () => {
    const file = JSON.parse(readFileSync(new URL('../../vectors/tree.json', import.meta.url), 'utf8')) as { vectors: TreeVector[] }
    for (const v of file.vectors) {
      it(`${v.name}: encodes to the recorded bytes and decodes back`, () => {
        const tree: Tree = { nodes: v.tree.map(nodeFromJson) }
        assert.equal(toHex(encodeTree(tree)), v.hex)
        assert.deepStrictEqual(decodeTree(fromHex(v.hex)), tree)
      })
    }
    it('the vectors were generated from the documented example trees', () => {
      const [doc, kinds] = file.vectors
      assert.equal(toHex(encodeTree(docExampleTree())), doc?.hex)
      assert.equal(toHex(encodeTree(severalKindsTree())), kinds?.hex)
    })
  })

  it('round-trips any valid tree (raw names, all node types, extreme times, optional fields)', () => {
    fc.assert(fc.property(treeArb, tree => {
      assert.deepStrictEqual(decodeTree(encodeTree(tree)), canonical(tree))
    }), { seed: SEED, numRuns: 300 })
  })

  it('writes exactly the documented grammar (checked against a plain reference encoder)', () => {
    fc.assert(fc.property(treeArb, tree => {
      const expected = referenceEncode(tree)
      assert.equal(toHex(encodeTree(tree)), toHex(expected))
      assert.deepStrictEqual(decodeTree(expected), canonical(tree))
    }), { seed: SEED + 4, numRuns: 300 })
  })

  it('is deterministic: node order, xattr order and `false` flags do not change the bytes', () => {
    fc.assert(fc.property(treeArb, tree => {
      const shuffled: Tree = {
        nodes: [...tree.nodes].reverse().map(n => ({ ...n, sparse: n.sparse ?? false, changedDuringBackup: n.changedDuringBackup ?? false, ...(n.xattrs !== undefined ? { xattrs: [...n.xattrs].reverse() } : {}) }))
      }
      const bytes = encodeTree(tree)
      assert.deepStrictEqual(encodeTree(shuffled), bytes)
      assert.deepStrictEqual(encodeTree(decodeTree(bytes)), bytes)
    }), { seed: SEED + 1, numRuns: 200 })
  })

  it('keeps an empty content list apart from an absent one', () => {
    const withEmpty = decodeTree(encodeTree({ nodes: [fileNode('a', { size: 0, content: [] })] })).nodes[0]
    const without = decodeTree(encodeTree({ nodes: [fileNode('a', { size: 0 })] })).nodes[0]
    assert.deepStrictEqual(withEmpty?.content, [])
    assert.equal(without?.content, undefined)
    assert.equal('content' in (without ?? {}), false)
  })

  it('keeps a leading U+FEFF in user, group and error text', () => {
    const node = fileNode('f', { user: '\ufeffu', group: '\ufeff', error: '\ufeff\ufeffe' })
    assert.deepStrictEqual(decodeTree(encodeTree({ nodes: [node] })).nodes[0], node)
  })

  describe('encoder refuses invalid trees', () => {
    const bad: Array<{ name: string, tree: Tree }> = [
      { name: 'duplicate names', tree: { nodes: [fileNode('a'), fileNode('b'), fileNode('a')] } },
      { name: 'empty name', tree: { nodes: [fileNode('')] } },
      { name: 'name "."', tree: { nodes: [fileNode('.')] } },
      { name: 'name ".."', tree: { nodes: [fileNode('..')] } },
      { name: 'name with "/"', tree: { nodes: [fileNode('a/b')] } },
      { name: 'name with NUL', tree: { nodes: [fileNode('a\0b')] } },
      { name: 'name longer than 4096 bytes', tree: { nodes: [fileNode('x'.repeat(4097))] } },
      { name: 'content on a dir', tree: { nodes: [fileNode('d', { type: 'dir', size: 0, content: [] })] } },
      { name: 'subtree on a file', tree: { nodes: [fileNode('f', { subtree: asTreeId(new Uint8Array(32)) })] } },
      { name: 'linkTarget on a file', tree: { nodes: [fileNode('f', { linkTarget: utf8Encode('x') })] } },
      { name: 'linkTarget with NUL', tree: { nodes: [fileNode('l', { type: 'symlink', size: 0, linkTarget: new Uint8Array([0x61, 0]) })] } },
      { name: 'rdev on a fifo', tree: { nodes: [fileNode('p', { type: 'fifo', size: 0, rdev: 1n })] } },
      { name: 'sparse on a dir', tree: { nodes: [fileNode('d', { type: 'dir', size: 0, sparse: true })] } },
      { name: 'non-zero size on a dir', tree: { nodes: [fileNode('d', { type: 'dir', size: 4096 })] } },
      { name: 'unknown type', tree: { nodes: [fileNode('x', { type: 'door' as NodeType })] } },
      { name: 'mode above 0o7777', tree: { nodes: [fileNode('f', { mode: 0o100644 })] } },
      { name: 'uid above 2^32-1', tree: { nodes: [fileNode('f', { uid: 2 ** 32 })] } },
      { name: 'fractional size', tree: { nodes: [fileNode('f', { size: 1.5 })] } },
      { name: 'size beyond a safe integer', tree: { nodes: [fileNode('f', { size: 2 ** 53 })] } },
      { name: 'mtime beyond int64', tree: { nodes: [fileNode('f', { mtimeNs: 1n << 63n })] } },
      { name: 'negative inode', tree: { nodes: [fileNode('f', { inode: -1n })] } },
      { name: 'device beyond uint64', tree: { nodes: [fileNode('f', { device: 1n << 64n })] } },
      { name: 'chunk id of 31 bytes', tree: { nodes: [fileNode('f', { content: [asChunkId(new Uint8Array(32)), new Uint8Array(31) as ReturnType<typeof asChunkId>] })] } },
      { name: 'duplicate xattr names', tree: { nodes: [fileNode('f', { xattrs: [{ name: utf8Encode('user.a'), value: new Uint8Array() }, { name: utf8Encode('user.a'), value: new Uint8Array(1) }] })] } },
      { name: 'xattr value over 64 KiB', tree: { nodes: [fileNode('f', { xattrs: [{ name: utf8Encode('user.a'), value: new Uint8Array(65537) }] })] } },
      { name: 'user with a lone surrogate', tree: { nodes: [fileNode('f', { user: 'a\ud800' })] } }
    ]
    for (const tc of bad) it(tc.name, () => throwsFormat(() => encodeTree(tc.tree)))
  })

  describe('decoder refuses malformed bytes', () => {
    const valid = encodeTree({ nodes: [fileNode('a'), fileNode('b')] })
    // a hand-built single node after the header "01 01": name "a", then the caller's type byte, flags and fields
    const node = (typeByte: number, flags: number[], tail: number[] = []): Uint8Array =>
      Uint8Array.from([TREE_FORMAT_VERSION, 1, 1, 0x61, typeByte, ...flags, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, ...tail])
    const cases: Array<{ name: string, bytes: Uint8Array }> = [
      { name: 'empty input', bytes: new Uint8Array() },
      { name: 'unknown version 0', bytes: Uint8Array.from([0, 0]) },
      { name: 'unknown version 2', bytes: Uint8Array.from([2, 0]) },
      { name: 'type byte 0', bytes: node(0, [0]) },
      { name: 'type byte 8', bytes: node(8, [0]) },
      { name: 'reserved flag bit 11', bytes: node(1, [0x80, 0x10]) },
      { name: 'reserved flag bit 40 (beyond 32-bit masks)', bytes: node(1, [0x80, 0x80, 0x80, 0x80, 0x80, 0x20]) },
      { name: 'non-minimal varint flags', bytes: node(1, [0x80, 0x00]) },
      { name: 'content on a fifo', bytes: node(4, [1], [0]) },
      { name: 'critical (odd) extension tag', bytes: node(1, [0x80, 0x08], [1, 1, 0]) },
      { name: 'empty extension block', bytes: node(1, [0x80, 0x08], [0]) },
      { name: 'extension tags out of order', bytes: node(1, [0x80, 0x08], [2, 4, 0, 2, 0]) },
      { name: 'names out of order', bytes: concatBytes([Uint8Array.from([1, 2]), encodeTree({ nodes: [fileNode('b')] }).subarray(2), encodeTree({ nodes: [fileNode('a')] }).subarray(2)]) },
      { name: 'duplicate names', bytes: concatBytes([Uint8Array.from([1, 2]), valid.subarray(2, 2 + (valid.length - 2) / 2), valid.subarray(2, 2 + (valid.length - 2) / 2)]) },
      { name: 'a trailing byte', bytes: concatBytes([valid, Uint8Array.from([0])]) },
      { name: 'node count of 2^53-1', bytes: Uint8Array.from([1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]) },
      { name: 'content count of 2^40 with 0 bytes left', bytes: node(1, [1], [0x80, 0x80, 0x80, 0x80, 0x80, 0x20]) },
      { name: 'name length of 2^60', bytes: Uint8Array.from([1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]) },
      { name: 'varint of 11 bytes', bytes: Uint8Array.from([1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]) }
    ]
    for (const tc of cases) it(tc.name, () => throwsFormat(() => decodeTree(tc.bytes)))

    describe('numeric fields at and beyond their limits', () => {
      // one file node "a" with no optional fields; fields = mode uid gid size links mtime atime ctime inode device
      const raw = (fields: number[][]): Uint8Array => Uint8Array.from([1, 1, 1, 0x61, 1, 0, ...fields.flat()])
      const zero = (): number[][] => [[0], [0], [0], [0], [1], [0], [0], [0], [0], [0]]
      const withField = (i: number, bytes: number[]): Uint8Array => { const f = zero(); f[i] = bytes; return raw(f) }
      const max64 = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
      const ok: Array<{ name: string, bytes: Uint8Array, check: (n: TreeNode) => unknown }> = [
        { name: 'inode 2^63 (10-byte varint ending 0x01)', bytes: withField(8, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), check: n => assert.equal(n.inode, 1n << 63n) },
        { name: 'device 2^64-1', bytes: withField(9, max64), check: n => assert.equal(n.device, (1n << 64n) - 1n) },
        { name: 'mtime -2^63 (zig-zag 2^64-1)', bytes: withField(5, max64), check: n => assert.equal(n.mtimeNs, -(1n << 63n)) },
        { name: 'ctime 2^63-1 (zig-zag 2^64-2)', bytes: withField(7, [0xfe, ...max64.slice(1)]), check: n => assert.equal(n.ctimeNs, (1n << 63n) - 1n) },
        { name: 'atime -1 and 1 (zig-zag 1 and 2)', bytes: raw([[0], [0], [0], [0], [1], [1], [2], [0], [0], [0]]), check: n => assert.deepEqual([n.mtimeNs, n.atimeNs], [-1n, 1n]) },
        { name: 'size 2^53-1', bytes: withField(3, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]), check: n => assert.equal(n.size, Number.MAX_SAFE_INTEGER) },
        { name: 'uid 2^32-1', bytes: withField(1, [0xff, 0xff, 0xff, 0xff, 0x0f]), check: n => assert.equal(n.uid, 0xffffffff) },
        { name: 'mode 0o7777', bytes: withField(0, [0xff, 0x1f]), check: n => assert.equal(n.mode, 0o7777) }
      ]
      for (const tc of ok) it(`accepts ${tc.name}`, () => { tc.check(decodeTree(tc.bytes).nodes[0] as TreeNode) })
      const bad: Array<{ name: string, bytes: Uint8Array }> = [
        { name: 'inode of 2^64 (10th byte 0x02)', bytes: withField(8, [...max64.slice(0, 9), 0x02]) },
        { name: 'device as an 11-byte varint', bytes: withField(9, [...max64.slice(0, 9), 0x81, 0x00]) },
        { name: 'non-minimal size 80 80 00', bytes: withField(3, [0x80, 0x80, 0x00]) },
        { name: 'non-minimal inode 80 00', bytes: withField(8, [0x80, 0x00]) },
        { name: 'non-minimal mtime ff 80 80 80 80 00', bytes: withField(5, [0xff, 0x80, 0x80, 0x80, 0x80, 0x00]) },
        { name: 'size 2^53', bytes: withField(3, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]) },
        { name: 'uid 2^32', bytes: withField(1, [0x80, 0x80, 0x80, 0x80, 0x10]) },
        { name: 'mode 0o10000', bytes: withField(0, [0x80, 0x20]) }
      ]
      for (const tc of bad) it(`refuses ${tc.name}`, () => throwsFormat(() => decodeTree(tc.bytes)))
    })

    it('every truncation of a valid encoding', () => {
      const bytes = encodeTree(severalKindsTree())
      for (let n = 0; n < bytes.length; n++) throwsFormat(() => decodeTree(bytes.subarray(0, n)))
    })

    it('accepts and skips an ignorable (even) extension, keeping every known field', () => {
      const plain = node(1, [0], [])
      const decoded = decodeTree(node(1, [0x80, 0x08], [2, 0, 3, 0xaa, 0xbb, 0xcc, 8, 0]))
      assert.equal(FLAG_EXTENSIONS, 0x400)
      assert.deepStrictEqual(decoded, decodeTree(plain))
    })
  })

  describe('fuzz: any input gives a valid tree or a FormatError, never another error', () => {
    const check = (bytes: Uint8Array): void => {
      let tree: Tree
      try {
        tree = decodeTree(bytes)
      } catch (err: unknown) {
        if (err instanceof FormatError) return
        throw err
      }
      assert.deepStrictEqual(decodeTree(encodeTree(tree)), tree)
    }
    it('arbitrary bytes (mostly with a valid version byte)', () => {
      const arb = fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }).map(b => concatBytes([Uint8Array.from([1]), b])))
      fc.assert(fc.property(arb, check), { seed: SEED + 2, numRuns: 3000 })
    })
    it('mutated valid encodings (byte flips, insertions, deletions, truncation)', () => {
      const mutation = fc.record({ kind: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate'), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) })
      fc.assert(fc.property(treeArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), (tree, muts) => {
        let b = Array.from(encodeTree(tree))
        for (const m of muts) {
          const at = m.at % (b.length + 1)
          if (m.kind === 'flip' && at < b.length) b[at] = (b[at] as number) ^ (1 << (m.value % 8))
          if (m.kind === 'set' && at < b.length) b[at] = m.value
          if (m.kind === 'insert') b.splice(at, 0, m.value)
          if (m.kind === 'delete') b.splice(at, 1)
          if (m.kind === 'truncate') b = b.slice(0, at)
        }
        check(Uint8Array.from(b))
      }), { seed: SEED + 3, numRuns: 1500 })
    })
  })

  it('decoded byte fields do not alias the input buffer', () => {
    const bytes = encodeTree(docExampleTree())
    const tree = decodeTree(bytes)
    bytes.fill(0)
    assert.deepStrictEqual(tree, canonical(docExampleTree()))
  })

  it('refuses xattr entries that are not objects with byte names (untyped callers)', () => {
    throwsFormat(() => encodeTree({ nodes: [fileNode('f', { xattrs: [null as unknown as Xattr] })] }))
  })
})
