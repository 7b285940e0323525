/** Turning lstat results into tree nodes, and the other way round for restore. */
import type { BigIntStats } from 'node:fs'
import { constants } from 'node:fs'
import type { NodeType, TreeNode } from '../format/tree.js'

export function nodeTypeOf (st: BigIntStats): NodeType | undefined {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'dir'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isFIFO()) return 'fifo'
  if (st.isSocket()) return 'socket'
  if (st.isCharacterDevice()) return 'chardev'
  if (st.isBlockDevice()) return 'blockdev'
  return undefined
}

/** A node with the metadata of `st`; content/subtree/linkTarget are filled in by the caller. */
export function nodeFromStats (name: Uint8Array, type: NodeType, st: BigIntStats): TreeNode {
  const node: TreeNode = {
    name,
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: type === 'file' ? Number(st.size) : 0,
    mtimeNs: st.mtimeNs,
    atimeNs: st.atimeNs,
    ctimeNs: st.ctimeNs,
    inode: st.ino,
    device: st.dev,
    links: Number(st.nlink)
  }
  if (type === 'chardev' || type === 'blockdev') node.rdev = st.rdev
  // holes: fewer 512-byte blocks allocated than the size needs
  if (type === 'file' && st.blocks * 512n < st.size) node.sparse = true
  return node
}

export function modeBitsFor (type: NodeType): number {
  switch (type) {
    case 'file': return constants.S_IFREG
    case 'dir': return constants.S_IFDIR
    case 'symlink': return constants.S_IFLNK
    case 'fifo': return constants.S_IFIFO
    case 'socket': return constants.S_IFSOCK
    case 'chardev': return constants.S_IFCHR
    case 'blockdev': return constants.S_IFBLK
  }
}

/** True when the file's identity and content markers are the same in both stats. */
export function sameFileVersion (a: BigIntStats, b: BigIntStats): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino && a.dev === b.dev
}
