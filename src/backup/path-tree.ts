/**
 * The backed-up paths as a tree of path components, so that the snapshot's root tree holds each
 * path under its full absolute location (/home/ann/docs -> home -> ann -> docs), as restic does.
 * Component keys are the raw bytes of the name held in a latin1 string (one char per byte).
 */
export interface PathTreeNode {
  /** true when this node is one of the given paths (its whole subtree is backed up) */
  included: boolean
  children: Map<string, PathTreeNode>
}

export function buildPathTree (absolutePaths: readonly string[]): PathTreeNode {
  const root: PathTreeNode = { included: false, children: new Map() }
  for (const p of absolutePaths) {
    const parts = Buffer.from(p).toString('latin1').split('/').filter(c => c !== '' && c !== '.')
    if (parts.length === 0) {
      // backing up "/" itself: every top-level entry is included
      root.included = true
      continue
    }
    let node = root
    for (const part of parts) {
      if (node.included) break
      let next = node.children.get(part)
      if (next === undefined) {
        next = { included: false, children: new Map() }
        node.children.set(part, next)
      }
      node = next
    }
    if (!node.included) {
      node.included = true
      node.children.clear()
    }
  }
  return root
}
