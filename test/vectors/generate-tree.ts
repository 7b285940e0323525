/**
 * Writes test/vectors/tree.json: golden encodings of the tree format (docs/format/trees-and-snapshots.md).
 * Run once with `npx tsx test/vectors/generate-tree.ts`; test/unit/format/tree.spec.ts checks the file.
 * Regenerate only on a deliberate format change (which also bumps TREE_FORMAT_VERSION).
 */
import { writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { decodeTree, encodeTree } from '../../src/format/tree.js'
import type { NodeType, Tree, TreeNode } from '../../src/format/tree.js'
import { asChunkId, asTreeId } from '../../src/ids.js'
import { fromHex, toHex, utf8Encode } from '../../src/util/bytes.js'

/** JSON form of a node: byte fields as hex, bigints as decimal strings. */
export interface NodeJson {
  name: string
  type: NodeType
  mode: number
  uid: number
  gid: number
  user?: string
  group?: string
  size: number
  mtimeNs: string
  atimeNs: string
  ctimeNs: string
  inode: string
  device: string
  links: number
  rdev?: string
  linkTarget?: string
  content?: string[]
  subtree?: string
  xattrs?: Array<{ name: string, value: string }>
  sparse?: boolean
  changedDuringBackup?: boolean
  error?: string
}
export interface TreeVector { name: string, description: string, tree: NodeJson[], hex: string }

export function nodeToJson (n: TreeNode): NodeJson {
  const j: NodeJson = {
    name: toHex(n.name), type: n.type, mode: n.mode, uid: n.uid, gid: n.gid, size: n.size,
    mtimeNs: n.mtimeNs.toString(), atimeNs: n.atimeNs.toString(), ctimeNs: n.ctimeNs.toString(),
    inode: n.inode.toString(), device: n.device.toString(), links: n.links
  }
  if (n.user !== undefined) j.user = n.user
  if (n.group !== undefined) j.group = n.group
  if (n.rdev !== undefined) j.rdev = n.rdev.toString()
  if (n.linkTarget !== undefined) j.linkTarget = toHex(n.linkTarget)
  if (n.content !== undefined) j.content = n.content.map(toHex)
  if (n.subtree !== undefined) j.subtree = toHex(n.subtree)
  if (n.xattrs !== undefined) j.xattrs = n.xattrs.map(x => ({ name: toHex(x.name), value: toHex(x.value) }))
  if (n.sparse !== undefined) j.sparse = n.sparse
  if (n.changedDuringBackup !== undefined) j.changedDuringBackup = n.changedDuringBackup
  if (n.error !== undefined) j.error = n.error
  return j
}

export function nodeFromJson (j: NodeJson): TreeNode {
  const n: TreeNode = {
    name: fromHex(j.name), type: j.type, mode: j.mode, uid: j.uid, gid: j.gid, size: j.size,
    mtimeNs: BigInt(j.mtimeNs), atimeNs: BigInt(j.atimeNs), ctimeNs: BigInt(j.ctimeNs),
    inode: BigInt(j.inode), device: BigInt(j.device), links: j.links
  }
  if (j.user !== undefined) n.user = j.user
  if (j.group !== undefined) n.group = j.group
  if (j.rdev !== undefined) n.rdev = BigInt(j.rdev)
  if (j.linkTarget !== undefined) n.linkTarget = fromHex(j.linkTarget)
  if (j.content !== undefined) n.content = j.content.map(h => asChunkId(fromHex(h)))
  if (j.subtree !== undefined) n.subtree = asTreeId(fromHex(j.subtree))
  if (j.xattrs !== undefined) n.xattrs = j.xattrs.map(x => ({ name: fromHex(x.name), value: fromHex(x.value) }))
  if (j.sparse !== undefined) n.sparse = j.sparse
  if (j.changedDuringBackup !== undefined) n.changedDuringBackup = j.changedDuringBackup
  if (j.error !== undefined) n.error = j.error
  return n
}

const id = (byte: number): Uint8Array => new Uint8Array(32).fill(byte)
const T = 1700000000123456789n
const base = { mode: 0o644, uid: 1000, gid: 1000, user: 'alice', group: 'alice', size: 0, mtimeNs: T, atimeNs: T, ctimeNs: T, device: 2049n, links: 1 }

/** One regular file: the example annotated byte by byte in the doc. */
export function docExampleTree (): Tree {
  return { nodes: [{ ...base, name: utf8Encode('hello.txt'), type: 'file', size: 12, inode: 1234n, content: [asChunkId(id(0x11))] }] }
}

/** Every node type and every optional field, given out of order (the encoder sorts). */
export function severalKindsTree (): Tree {
  return {
    nodes: [
      { ...base, name: utf8Encode('src'), type: 'dir', mode: 0o755, links: 3, inode: 10n, subtree: asTreeId(id(0x22)) },
      {
        ...base, name: utf8Encode('disk.img'), type: 'file', size: 3 << 20, inode: 11n, sparse: true,
        content: [asChunkId(id(0x33)), asChunkId(id(0x34)), asChunkId(id(0x33))],
        xattrs: [{ name: utf8Encode('user.tag'), value: utf8Encode('blue') }, { name: utf8Encode('security.selinux'), value: new Uint8Array([0x73, 0x79, 0x73, 0x00]) }]
      },
      { ...base, name: utf8Encode('latest'), type: 'symlink', mode: 0o777, inode: 12n, linkTarget: utf8Encode('../releases/v2') },
      { ...base, name: utf8Encode('pipe'), type: 'fifo', mode: 0o600, inode: 13n },
      { ...base, name: utf8Encode('agent.sock'), type: 'socket', mode: 0o700, inode: 14n },
      { ...base, name: utf8Encode('null'), type: 'chardev', mode: 0o666, uid: 0, gid: 0, user: 'root', group: 'root', inode: 15n, device: 5n, rdev: 259n },
      { ...base, name: utf8Encode('sda'), type: 'blockdev', mode: 0o660, uid: 0, gid: 6, user: 'root', group: 'disk', inode: 16n, device: 5n, rdev: 2048n },
      { ...base, name: new Uint8Array([0x6e, 0x0a, 0xff, 0xfe, 0x2e, 0x6c, 0x6f, 0x67]), type: 'file', size: 0, inode: (1n << 64n) - 1n, mtimeNs: -1234567890123456789n, content: [] },
      { ...base, name: utf8Encode('growing.log'), type: 'file', mode: 0o4755, size: 9000, inode: 17n, links: 2, changedDuringBackup: true, error: 'file changed while it was read', content: [asChunkId(id(0x44))] },
      { name: utf8Encode('secret'), type: 'file', mode: 0, uid: 4294967295, gid: 4294967295, size: 5, mtimeNs: (1n << 63n) - 1n, atimeNs: -(1n << 63n), ctimeNs: 0n, inode: 18n, device: 0n, links: 1, error: 'EACCES: permission denied' }
    ]
  }
}

export function buildTreeVectors (): TreeVector[] {
  const cases = [
    { name: 'doc-example', description: 'one regular file; annotated in docs/format/trees-and-snapshots.md', tree: docExampleTree() },
    { name: 'several-kinds', description: 'all seven node types, every optional field, non-UTF-8 name, extreme times and ids', tree: severalKindsTree() }
  ]
  return cases.map(c => {
    const bytes = encodeTree(c.tree)
    return { name: c.name, description: c.description, tree: decodeTree(bytes).nodes.map(nodeToJson), hex: toHex(bytes) }
  })
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = new URL('./tree.json', import.meta.url)
  writeFileSync(out, JSON.stringify({ format: 'p2pbak tree v1', spec: 'docs/format/trees-and-snapshots.md', vectors: buildTreeVectors() }, null, 2) + '\n')
}
