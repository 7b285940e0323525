/**
 * Tree format (version 1): the plaintext of one directory listing with full metadata.
 *
 *   tree  = version u8 (=1) || count uvarint || node{count}          (nodes strictly ascending by name bytes)
 *   node  = nameLen uvarint || name || type u8 || flags uvarint
 *           || mode uvarint || uid uvarint || gid uvarint || size uvarint || links uvarint
 *           || mtimeNs svarint || atimeNs svarint || ctimeNs svarint || inode uvarint || device uvarint
 *           || the optional fields whose flag bit is set, in ascending bit order (see FLAG_* below)
 *
 * Optional fields never appear under another node type than their own (content only on files, ...).
 * Bit 10 announces an extension block: later versions add fields there, tagged; a version-1 reader
 * ignores even tags and rejects odd ("critical") ones. Every other bit is reserved and rejected.
 * docs/format/trees-and-snapshots.md is the full spec. Pure: no I/O, no crypto.
 */
import { FormatError } from '../errors.js'
import { asChunkId, asTreeId, ID_BYTES } from '../ids.js'
import type { ChunkId, TreeId } from '../ids.js'
import { ByteReader, ByteWriter, compareBytes, scanUvarint, utf8Decode } from '../util/bytes.js'
import { shown } from '../util/text.js'

export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev'
export interface Xattr { name: Uint8Array, value: Uint8Array }
export interface TreeNode {
  /** raw file-name bytes: every byte except '/' and NUL; non-empty; not '.' or '..' */
  name: Uint8Array
  type: NodeType
  /** permission bits incl. setuid/setgid/sticky: (st_mode & 0o7777) */
  mode: number
  uid: number
  gid: number
  /** owner name when known (informational) */
  user?: string
  group?: string
  /** bytes for files (safe integer), 0 otherwise */
  size: number
  /** ns since epoch, may be negative or far beyond 2038 */
  mtimeNs: bigint
  atimeNs: bigint
  ctimeNs: bigint
  inode: bigint
  /** st_dev; with inode identifies hardlink groups within a snapshot */
  device: bigint
  /** st_nlink */
  links: number
  /** chardev/blockdev only */
  rdev?: bigint
  /** symlink only, raw bytes */
  linkTarget?: Uint8Array
  /** file only: ids of its chunks in order */
  content?: ChunkId[]
  /** dir only */
  subtree?: TreeId
  /** encoded sorted by name; names unique */
  xattrs?: Xattr[]
  /** file had holes at backup; restore may punch holes for all-zero chunks. `false` is stored as absent. */
  sparse?: boolean
  /** file changed while read and could not be read consistently. `false` is stored as absent. */
  changedDuringBackup?: boolean
  /** the node could not be read fully (message); content may be partial or absent */
  error?: string
}
export interface Tree { nodes: TreeNode[] }

export const TREE_FORMAT_VERSION = 1
/** Type bytes: NODE_TYPES[i] is written as i + 1; 0 and 8..255 are invalid in version 1. */
export const NODE_TYPES: readonly NodeType[] = ['file', 'dir', 'symlink', 'fifo', 'socket', 'chardev', 'blockdev']

/** Longest file name (Linux allows 255; other file systems up to 765 UTF-8 bytes; generous headroom). */
export const MAX_NAME_BYTES = 4096
/** Longest symlink target (Linux PATH_MAX is 4096). */
export const MAX_LINK_TARGET_BYTES = 65536
/** Longest user, group or error text, in UTF-8 bytes. */
export const MAX_NODE_TEXT_BYTES = 65536
/** Linux XATTR_NAME_MAX / XATTR_SIZE_MAX. */
export const MAX_XATTR_NAME_BYTES = 255
export const MAX_XATTR_VALUE_BYTES = 65536
export const MAX_XATTRS = 65536
/** uid, gid: 32-bit unsigned on every supported OS. */
export const MAX_ID_NUMBER = 0xffff_ffff

export const FLAG_CONTENT = 1 << 0
export const FLAG_SUBTREE = 1 << 1
export const FLAG_USER = 1 << 2
export const FLAG_GROUP = 1 << 3
export const FLAG_LINK_TARGET = 1 << 4
export const FLAG_XATTRS = 1 << 5
export const FLAG_RDEV = 1 << 6
export const FLAG_SPARSE = 1 << 7
export const FLAG_CHANGED = 1 << 8
export const FLAG_ERROR = 1 << 9
export const FLAG_EXTENSIONS = 1 << 10
const KNOWN_FLAGS = (1 << 11) - 1

/** Smallest possible encoded node: 1-byte name with its length, type, flags and 11 one-byte numbers. */
const MIN_NODE_BYTES = 2 + 1 + 1 + 11
const U64_MAX = (1n << 64n) - 1n
const I64_MIN = -(1n << 63n)
const I64_MAX = (1n << 63n) - 1n
const textPreview = new TextDecoder('utf-8')

/** Strict UTF-8 that keeps a leading U+FEFF (a round trip must give the same bytes). */
function readText (r: ByteReader, max: number): string { return utf8Decode(r.bytes(max)) }

function label (name: Uint8Array): string {
  return JSON.stringify(textPreview.decode(name.subarray(0, 64)))
}

/** `what` is the node's name; its readable label is built only when something fails. */
function fail (what: Uint8Array | undefined, msg: string): never {
  throw new FormatError(`tree node${what instanceof Uint8Array ? ' ' + label(what) : ''}: ${msg}`)
}

function checkUint (v: unknown, max: number, what: Uint8Array | undefined, field: string): asserts v is number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) fail(what, `${field} must be an integer in 0..${max}, got ${shown(v)}`)
}

function checkBig (v: unknown, min: bigint, max: bigint, what: Uint8Array | undefined, field: string): asserts v is bigint {
  if (typeof v !== 'bigint' || v < min || v > max) fail(what, `${field} must be a bigint in ${min}..${max}, got ${shown(v)}`)
}

function checkBytes (v: unknown, min: number, max: number, what: Uint8Array | undefined, field: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array) || v.byteLength < min || v.byteLength > max) fail(what, `${field} must be ${min}..${max} bytes`)
}

function checkText (v: unknown, what: Uint8Array | undefined, field: string): asserts v is string {
  if (typeof v !== 'string') fail(what, `${field} must be a string`)
  if (/\p{Cs}/u.test(v)) fail(what, `${field} holds a lone surrogate (not encodable as UTF-8)`)
  if (v.length * 3 > MAX_NODE_TEXT_BYTES && Buffer.byteLength(v, 'utf8') > MAX_NODE_TEXT_BYTES) fail(what, `${field} is longer than ${MAX_NODE_TEXT_BYTES} UTF-8 bytes`)
}

function checkName (name: unknown): asserts name is Uint8Array {
  checkBytes(name, 1, MAX_NAME_BYTES, undefined, 'name')
  if (name.includes(0) || name.includes(0x2f)) fail(name, 'a name must not contain "/" or NUL')
  if (name[0] === 0x2e && (name.byteLength === 1 || (name.byteLength === 2 && name[1] === 0x2e))) fail(name, 'a name must not be "." or ".."')
}

/** Every rule a node must follow, for the encoder and the decoder alike (xattrs must already be sorted). */
function validateNode (n: TreeNode): void {
  checkName(n.name)
  const what = n.name
  if (!NODE_TYPES.includes(n.type)) fail(what, `unknown node type ${shown(n.type)}`)
  checkUint(n.mode, 0o7777, what, 'mode')
  checkUint(n.uid, MAX_ID_NUMBER, what, 'uid')
  checkUint(n.gid, MAX_ID_NUMBER, what, 'gid')
  checkUint(n.size, Number.MAX_SAFE_INTEGER, what, 'size')
  if (n.type !== 'file' && n.size !== 0) fail(what, `size must be 0 for a ${n.type}`)
  checkUint(n.links, Number.MAX_SAFE_INTEGER, what, 'links')
  checkBig(n.mtimeNs, I64_MIN, I64_MAX, what, 'mtimeNs')
  checkBig(n.atimeNs, I64_MIN, I64_MAX, what, 'atimeNs')
  checkBig(n.ctimeNs, I64_MIN, I64_MAX, what, 'ctimeNs')
  checkBig(n.inode, 0n, U64_MAX, what, 'inode')
  checkBig(n.device, 0n, U64_MAX, what, 'device')
  if (n.user !== undefined) checkText(n.user, what, 'user')
  if (n.group !== undefined) checkText(n.group, what, 'group')
  if (n.error !== undefined) checkText(n.error, what, 'error')
  if (n.rdev !== undefined) {
    if (n.type !== 'chardev' && n.type !== 'blockdev') fail(what, `rdev is only for devices, not a ${n.type}`)
    checkBig(n.rdev, 0n, U64_MAX, what, 'rdev')
  }
  if (n.linkTarget !== undefined) {
    if (n.type !== 'symlink') fail(what, `linkTarget is only for symlinks, not a ${n.type}`)
    checkBytes(n.linkTarget, 0, MAX_LINK_TARGET_BYTES, what, 'linkTarget')
    if (n.linkTarget.includes(0)) fail(what, 'linkTarget must not contain NUL')
  }
  if (n.content !== undefined) {
    if (n.type !== 'file') fail(what, `content is only for files, not a ${n.type}`)
    if (!Array.isArray(n.content)) fail(what, 'content must be an array of chunk ids')
    for (const id of n.content) checkBytes(id, ID_BYTES, ID_BYTES, what, 'a content chunk id')
  }
  if (n.subtree !== undefined) {
    if (n.type !== 'dir') fail(what, `subtree is only for directories, not a ${n.type}`)
    checkBytes(n.subtree, ID_BYTES, ID_BYTES, what, 'subtree id')
  }
  if (n.sparse !== undefined && typeof n.sparse !== 'boolean') fail(what, 'sparse must be a boolean')
  if (n.sparse === true && n.type !== 'file') fail(what, `sparse is only for files, not a ${n.type}`)
  if (n.changedDuringBackup !== undefined && typeof n.changedDuringBackup !== 'boolean') fail(what, 'changedDuringBackup must be a boolean')
  if (n.xattrs !== undefined) {
    if (!Array.isArray(n.xattrs) || n.xattrs.length > MAX_XATTRS) fail(what, `xattrs must be an array of at most ${MAX_XATTRS}`)
    let prev: Uint8Array | undefined
    for (const x of n.xattrs) {
      checkBytes(x.name, 1, MAX_XATTR_NAME_BYTES, what, 'xattr name')
      if (x.name.includes(0)) fail(what, 'an xattr name must not contain NUL')
      checkBytes(x.value, 0, MAX_XATTR_VALUE_BYTES, what, 'xattr value')
      if (prev !== undefined && compareBytes(prev, x.name) >= 0) fail(what, `xattr ${label(x.name)} is duplicated or out of order`)
      prev = x.name
    }
  }
}

// ---- varints with few BigInt operations: the same bytes and errors as util/bytes, on the tree's hot path ----

/** v: a validated safe integer >= 0. */
function putUint (w: ByteWriter, v: number): void {
  while (v >= 0x80) { w.u8((v % 0x80) | 0x80); v = Math.floor(v / 0x80) }
  w.u8(v)
}

/** v: a validated bigint in 0..2^64-1. */
function putU64 (w: ByteWriter, v: bigint): void {
  if (v <= 0x1f_ffff_ffff_ffffn) { putUint(w, Number(v)); return }
  let lo = Number(v & 0xfff_ffffn)
  for (let i = 0; i < 4; i++) { w.u8((lo & 0x7f) | 0x80); lo >>>= 7 }
  putUint(w, Number(v >> 28n))
}

function putI64 (w: ByteWriter, v: bigint): void { putU64(w, v >= 0n ? v << 1n : ((-v) << 1n) - 1n) }

/**
 * Splits the minimal uvarint (< 2^64) at r.pos into its low 28 bits and the rest, and advances r; returns
 * undefined, not advancing, for anything else (the caller's util/bytes fallback then raises the FormatError).
 */
function scanVarint (r: ByteReader): [lo: number, hi: number] | undefined {
  const v = scanUvarint(r.buf, r.pos)
  if (v === undefined) return undefined
  r.pos = v[2]
  return [v[0], v[1]]
}

function getUint (r: ByteReader): number {
  const start = r.pos
  const s = scanVarint(r)
  if (s !== undefined && s[1] < 2 ** 25) return s[1] * 2 ** 28 + s[0]
  r.pos = start
  return r.uvarint()
}

function getU64 (r: ByteReader): bigint {
  const s = scanVarint(r)
  if (s === undefined) return r.uvarintBig()
  return s[1] === 0 ? BigInt(s[0]) : (BigInt(s[1]) << 28n) + BigInt(s[0])
}

function getI64 (r: ByteReader): bigint {
  const z = getU64(r)
  return (z & 1n) === 0n ? z >> 1n : -((z + 1n) >> 1n)
}

function flagsOf (n: TreeNode): number {
  let f = 0
  if (n.content !== undefined) f |= FLAG_CONTENT
  if (n.subtree !== undefined) f |= FLAG_SUBTREE
  if (n.user !== undefined) f |= FLAG_USER
  if (n.group !== undefined) f |= FLAG_GROUP
  if (n.linkTarget !== undefined) f |= FLAG_LINK_TARGET
  if (n.xattrs !== undefined) f |= FLAG_XATTRS
  if (n.rdev !== undefined) f |= FLAG_RDEV
  if (n.sparse === true) f |= FLAG_SPARSE
  if (n.changedDuringBackup === true) f |= FLAG_CHANGED
  if (n.error !== undefined) f |= FLAG_ERROR
  return f
}

function writeNode (w: ByteWriter, n: TreeNode): void {
  w.bytes(n.name).u8(NODE_TYPES.indexOf(n.type) + 1)
  for (const v of [flagsOf(n), n.mode, n.uid, n.gid, n.size, n.links]) putUint(w, v)
  for (const v of [n.mtimeNs, n.atimeNs, n.ctimeNs]) putI64(w, v)
  putU64(w, n.inode)
  putU64(w, n.device)
  if (n.content !== undefined) { w.uvarint(n.content.length); for (const id of n.content) w.raw(id) }
  if (n.subtree !== undefined) w.raw(n.subtree)
  if (n.user !== undefined) w.string(n.user)
  if (n.group !== undefined) w.string(n.group)
  if (n.linkTarget !== undefined) w.bytes(n.linkTarget)
  if (n.xattrs !== undefined) { w.uvarint(n.xattrs.length); for (const x of n.xattrs) w.bytes(x.name).bytes(x.value) }
  if (n.rdev !== undefined) putU64(w, n.rdev)
  if (n.error !== undefined) w.string(n.error)
}

const byName = <T extends { name: Uint8Array }>(a: T, b: T): number => compareBytes(a.name, b.name)

/**
 * Encodes nodes sorted by name (byte order), xattrs sorted by name; throws FormatError on duplicates or invalid
 * names / inconsistent fields (e.g. content on a dir). Deterministic: equal trees give equal bytes.
 */
export function encodeTree (tree: Tree): Uint8Array {
  if (tree === null || typeof tree !== 'object' || !Array.isArray(tree.nodes)) throw new FormatError('a tree must have a nodes array')
  const nodes = tree.nodes.map(n => {
    if (n === null || typeof n !== 'object') throw new FormatError('a tree node must be an object')
    if (!Array.isArray(n.xattrs)) return n
    for (const x of n.xattrs) {
      if (x === null || typeof x !== 'object' || !(x.name instanceof Uint8Array)) throw new FormatError('an xattr must have a byte-array name')
    }
    return { ...n, xattrs: [...n.xattrs].sort(byName) }
  })
  for (const n of nodes) validateNode(n)
  nodes.sort(byName)
  for (let i = 1; i < nodes.length; i++) {
    if (compareBytes((nodes[i - 1] as TreeNode).name, (nodes[i] as TreeNode).name) === 0) throw new FormatError(`tree has two nodes named ${label((nodes[i] as TreeNode).name)}`)
  }
  const w = new ByteWriter(64 + nodes.length * 96)
  w.u8(TREE_FORMAT_VERSION).uvarint(nodes.length)
  for (const n of nodes) writeNode(w, n)
  return w.finish()
}

/** A count of items each at least `minBytes` long must fit in what is left of the input. */
function readCount (r: ByteReader, minBytes: number, max = Number.MAX_SAFE_INTEGER): number {
  return r.uvarint(Math.min(max, Math.floor(r.remaining / minBytes)))
}

/** Extension block (flag bit 10): count >= 1 of (tag uvarint, value bytes), tags strictly ascending. */
function skipExtensions (r: ByteReader, what: Uint8Array): void {
  const count = readCount(r, 2)
  if (count === 0) fail(what, 'an extension block must not be empty')
  let prev = -1
  for (let i = 0; i < count; i++) {
    const tag = r.uvarint()
    if (tag <= prev) fail(what, `extension tag ${tag} is duplicated or out of order`)
    if (tag % 2 === 1) fail(what, `extension ${tag} is critical and not supported by this version; upgrade p2pbak`)
    r.bytes()
    prev = tag
  }
}

function readNode (r: ByteReader): TreeNode {
  const name = r.bytes(MAX_NAME_BYTES).slice()
  checkName(name)
  const what = name
  const typeByte = r.u8()
  const type = NODE_TYPES[typeByte - 1]
  if (type === undefined) fail(what, `unknown node type byte ${typeByte}`)
  const flags = r.uvarintBig()
  if (flags > BigInt(KNOWN_FLAGS)) fail(what, `reserved flag bits set (0x${flags.toString(16)})`)
  const f = Number(flags)
  const n: TreeNode = {
    name,
    type,
    mode: getUint(r),
    uid: getUint(r),
    gid: getUint(r),
    size: getUint(r),
    links: getUint(r),
    mtimeNs: getI64(r),
    atimeNs: getI64(r),
    ctimeNs: getI64(r),
    inode: getU64(r),
    device: getU64(r)
  }
  if ((f & FLAG_CONTENT) !== 0) {
    const count = readCount(r, ID_BYTES)
    const content: ChunkId[] = []
    for (let i = 0; i < count; i++) content.push(asChunkId(r.raw(ID_BYTES).slice()))
    n.content = content
  }
  if ((f & FLAG_SUBTREE) !== 0) n.subtree = asTreeId(r.raw(ID_BYTES).slice())
  if ((f & FLAG_USER) !== 0) n.user = readText(r, MAX_NODE_TEXT_BYTES)
  if ((f & FLAG_GROUP) !== 0) n.group = readText(r, MAX_NODE_TEXT_BYTES)
  if ((f & FLAG_LINK_TARGET) !== 0) n.linkTarget = r.bytes(MAX_LINK_TARGET_BYTES).slice()
  if ((f & FLAG_XATTRS) !== 0) {
    const count = readCount(r, 3, MAX_XATTRS)
    const xattrs: Xattr[] = []
    for (let i = 0; i < count; i++) {
      const xname = r.bytes(MAX_XATTR_NAME_BYTES).slice()
      xattrs.push({ name: xname, value: r.bytes(MAX_XATTR_VALUE_BYTES).slice() })
    }
    n.xattrs = xattrs
  }
  if ((f & FLAG_RDEV) !== 0) n.rdev = getU64(r)
  if ((f & FLAG_SPARSE) !== 0) n.sparse = true
  if ((f & FLAG_CHANGED) !== 0) n.changedDuringBackup = true
  if ((f & FLAG_ERROR) !== 0) n.error = readText(r, MAX_NODE_TEXT_BYTES)
  if ((f & FLAG_EXTENSIONS) !== 0) skipExtensions(r, what)
  validateNode(n)
  return n
}

/**
 * Strict decoder: FormatError (never another error type, never a hang or huge allocation) on any malformed input:
 * truncated, unknown version, bad type byte, unsorted/duplicate names, counts larger than the remaining bytes,
 * trailing bytes, reserved flag bits, critical extensions, fields that do not belong to the node's type.
 */
export function decodeTree (bytes: Uint8Array): Tree {
  if (!(bytes instanceof Uint8Array)) throw new FormatError('a tree must be a byte array')
  const r = new ByteReader(bytes, 'tree')
  const version = r.u8()
  if (version !== TREE_FORMAT_VERSION) throw new FormatError(`tree version ${version} is not supported (this p2pbak reads version ${TREE_FORMAT_VERSION}); upgrade p2pbak`)
  const count = readCount(r, MIN_NODE_BYTES)
  const nodes: TreeNode[] = []
  let prev: Uint8Array | undefined
  for (let i = 0; i < count; i++) {
    const n = readNode(r)
    if (prev !== undefined && compareBytes(prev, n.name) >= 0) throw new FormatError(`tree: node ${label(n.name)} is duplicated or out of order`)
    prev = n.name
    nodes.push(n)
  }
  r.end()
  return { nodes }
}
