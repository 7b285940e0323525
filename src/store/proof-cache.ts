/**
 * The persister's side files for storage proofs, one folder per owner (docs/format/proofs.md §4):
 *   <dir>/<owner>/<pack hex>.<index>   the leaf hashes of a held share, so that answering a challenge
 *                                      reads only the challenged segments, not the whole share
 *   <dir>/<owner>/damaged              share names the persister found damaged (scrub), one per line
 * A leaf file: "P2PBLEAF" || version u8 (=1) || 3 zero bytes || share length u64le || leaves (32 each)
 * || BLAKE3(everything before). A file that fails its checksum is ignored and rebuilt. Caching the
 * leaves does not let a holder cheat: a proof must carry the segment bytes themselves.
 */
import { mkdir, readFile, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { FormatError, errnoCode } from '../errors.js'
import { contentHash } from '../crypto/index.js'
import { ByteReader, ByteWriter, equalBytes, utf8Encode } from '../util/bytes.js'
import { writeFileAtomic } from './atomic.js'
import { shareRefName, type ShareRef } from './share-store.js'

const MAGIC = utf8Encode('P2PBLEAF')
const HEAD = 8 + 1 + 3 + 8
const SUM = 32

export class ProofCache {
  constructor (private readonly dir: string) {}

  private ownerDir (owner: string): string {
    if (!/^[0-9a-f]{64}$/.test(owner)) throw new FormatError('an owner is a 64-hex user id')
    return join(this.dir, owner)
  }

  /** The cached leaves of a share of `length` bytes, or undefined (absent, stale or damaged). */
  async leaves (owner: string, ref: ShareRef, length: number): Promise<Uint8Array[] | undefined> {
    let bytes: Uint8Array
    try {
      bytes = new Uint8Array(await readFile(join(this.ownerDir(owner), shareRefName(ref))))
    } catch (err: unknown) {
      if (errnoCode(err) === 'ENOENT') return undefined
      throw err
    }
    if (bytes.byteLength < HEAD + SUM || (bytes.byteLength - HEAD - SUM) % 32 !== 0) return undefined
    if (!equalBytes(contentHash(bytes.subarray(0, bytes.byteLength - SUM)), bytes.subarray(bytes.byteLength - SUM))) return undefined
    const r = new ByteReader(bytes.subarray(0, HEAD), 'leaf cache')
    if (!equalBytes(r.raw(8), MAGIC) || r.u8() !== 1) return undefined
    r.raw(3)
    if (Number(r.u64()) !== length) return undefined
    const out: Uint8Array[] = []
    for (let off = HEAD; off < bytes.byteLength - SUM; off += 32) out.push(bytes.slice(off, off + 32))
    return out
  }

  async putLeaves (owner: string, ref: ShareRef, length: number, leaves: readonly Uint8Array[]): Promise<void> {
    const dir = this.ownerDir(owner)
    await mkdir(dir, { recursive: true })
    const w = new ByteWriter(HEAD + leaves.length * 32 + SUM).raw(MAGIC).u8(1).raw(new Uint8Array(3)).u64(length)
    for (const l of leaves) w.raw(l)
    const body = w.finish()
    const file = new Uint8Array(body.byteLength + SUM)
    file.set(body, 0)
    file.set(contentHash(body), body.byteLength)
    // a lost cache costs one re-read of the share: no fsync of the directory needed beyond the atomic write
    await writeFileAtomic(join(dir, shareRefName(ref)), file)
  }

  /** Deletes everything kept for `owner` (its data here is gone: a removed member's, after the grace). */
  async forget (owner: string): Promise<void> {
    await rm(this.ownerDir(owner), { recursive: true, force: true })
  }

  async drop (owner: string, ref: ShareRef): Promise<void> {
    await rm(join(this.ownerDir(owner), shareRefName(ref)), { force: true })
  }

  /** Leaf files of shares that are no longer held (the caller says which are). */
  async prune (owner: string, held: (name: string) => boolean): Promise<number> {
    let names: string[]
    try { names = await readdir(this.ownerDir(owner)) } catch { return 0 }
    let n = 0
    for (const name of names) {
      if (!/^[0-9a-f]{64}\.\d{1,3}$/.test(name) || held(name)) continue
      await rm(join(this.ownerDir(owner), name), { force: true })
      n++
    }
    return n
  }

  async addDamaged (owner: string, ref: ShareRef): Promise<void> {
    const list = await this.damaged(owner)
    const name = shareRefName(ref)
    if (list.includes(name)) return
    await mkdir(this.ownerDir(owner), { recursive: true })
    await writeFileAtomic(join(this.ownerDir(owner), 'damaged'), [...list, name].join('\n') + '\n')
  }

  /** Names (`<pack hex>.<index>`) of shares found damaged and not yet replaced by their owner. */
  async damaged (owner: string): Promise<string[]> {
    try {
      const text = await readFile(join(this.ownerDir(owner), 'damaged'), 'utf8')
      return text.split('\n').filter(l => /^[0-9a-f]{64}\.\d{1,3}$/.test(l))
    } catch (err: unknown) {
      if (errnoCode(err) === 'ENOENT') return []
      throw err
    }
  }

  /** Forgets a damage report (the owner replaced or deleted the share). */
  async clearDamaged (owner: string, ref: ShareRef): Promise<void> {
    const list = await this.damaged(owner)
    const name = shareRefName(ref)
    if (!list.includes(name)) return
    await writeFileAtomic(join(this.ownerDir(owner), 'damaged'), list.filter(n => n !== name).map(n => n + '\n').join(''))
  }
}
