/**
 * Several devices of one person at the repository level: each device has its own index (its own
 * HOME/index), all share one namespace of packs and records (what friends hold for that person), and
 * all run on one manual clock. The shared store's listing is not authoritative, as a group's is not:
 * a pack missing from it is not forgotten by an index. Backups are real Archiver runs over real
 * folders; the hooks of commit and prune let a test stop either at every step boundary. A device
 * may be a write-only machine (its own key file's identity and device signer, docs/format/keys.md
 * §11): it backs up only; `verify` reads its snapshots on the full devices.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deriveGearTable, deriveIdentity, loadBackend, type Identity, type SodiumBackend } from '../../src/crypto/index.js'
import { FastCdc } from '../../src/chunking/index.js'
import { Archiver, walkTree } from '../../src/backup/index.js'
import { IndexDb, MemoryShareStore } from '../../src/store/index.js'
import { Repository, SingleStorePackStore, checkRepository, listSnapshots, prune, syncCondemned, type CommitOptions, type PruneOptions, type PruneReport, type RecordSigner } from '../../src/repo/index.js'
import { createWriteOnlyKey, deviceSigningKey, type WriteOnlyKey } from '../../src/peers/index.js'
import { rebuildIndex, recordForgotten } from '../../src/repo/index.js'
import { formatId } from '../../src/ids.js'

/** The shared namespace as a group shows it: its listing may miss packs (offline holders). */
class SharedPackStore extends SingleStorePackStore {
  override readonly listIsAuthoritative = false
}

export class Device {
  readonly repo: Repository
  constructor (readonly name: string, readonly dir: string, sodium: SodiumBackend, identity: Identity, shared: MemoryShareStore, readonly world: Devices, readonly writeOnly?: WriteOnlyKey) {
    const recordSigner: RecordSigner | undefined = writeOnly === undefined ? undefined : { cert: writeOnly.deviceCert, ...deviceSigningKey(sodium, writeOnly) }
    this.repo = new Repository({
      sodium, identity: writeOnly?.identity ?? identity, packs: new SharedPackStore(shared), index: IndexDb.open(join(dir, 'index')), ...(recordSigner !== undefined ? { recordSigner } : {})
    }, { packSize: 1 << 20, compressWorkers: 0 })
  }

  /** What a command does first: the condemnation records, then the packs (Home.syncIndex). */
  async sync (): Promise<void> {
    await syncCondemned(this.repo, this.world.now)
    await rebuildIndex(this.repo)
  }

  /** One backup of `src`, with the commit's step hook; returns the snapshot id (hex). */
  async backup (src: string, commit: Omit<CommitOptions, 'now'> = {}): Promise<string> {
    await this.sync()
    const archiver = new Archiver({ repo: this.repo, cdc: this.world.cdc })
    const s = await archiver.run({ paths: [src], host: this.name, commit: { now: this.world.now, graceMs: this.world.graceMs, ...commit } })
    const id = formatId(s.snapshotId)
    this.world.expected.set(id, this.world.contentOf(src))
    return id
  }

  async forget (id: string): Promise<void> {
    await recordForgotten(this.repo, [Buffer.from(id, 'hex')], { now: this.world.now, host: this.name })
    this.world.expected.delete(id)
  }

  async prune (opts: Omit<PruneOptions, 'now' | 'graceMs' | 'host'> = {}): Promise<PruneReport> {
    return await prune(this.repo, { now: this.world.now, graceMs: this.world.graceMs, host: this.name, ...opts })
  }

  async close (): Promise<void> { await this.repo.close() }
}

export class Devices {
  readonly dir: string
  readonly shared = new MemoryShareStore()
  readonly devices: Device[] = []
  /** snapshot id (hex) → path → bytes, as backed up */
  readonly expected = new Map<string, Map<string, Buffer>>()
  /** the files as they were at each backup, per source folder */
  private readonly files = new Map<string, Map<string, Buffer>>()
  t = Date.UTC(2026, 0, 1)
  readonly now = (): number => this.t
  cdc!: FastCdc
  private sodium!: SodiumBackend
  private identity!: Identity

  constructor (readonly graceMs: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'p2pbak-devices-'))
  }

  /** `writeOnly`: names of the devices that are write-only machines (the file's key: `keyOf`, or a fresh one) */
  async start (names: readonly string[], opts: { writeOnly?: readonly string[], keyOf?: (name: string, key: WriteOnlyKey) => WriteOnlyKey } = {}): Promise<this> {
    this.sodium = await loadBackend()
    this.identity = deriveIdentity(this.sodium, new Uint8Array(32).fill(42))
    this.cdc = new FastCdc(deriveGearTable(this.identity.chunkerKey))
    for (const n of names) {
      const d = join(this.dir, n)
      mkdirSync(d, { recursive: true })
      let key: WriteOnlyKey | undefined
      if (opts.writeOnly?.includes(n) === true) {
        key = createWriteOnlyKey(this.sodium, this.identity, n, this.t, null).key
        key = opts.keyOf?.(n, key) ?? key
      }
      this.devices.push(new Device(n, d, this.sodium, this.identity, this.shared, this, key))
    }
    return this
  }

  device (name: string): Device {
    const d = this.devices.find(x => x.name === name)
    if (d === undefined) throw new Error(`no device ${name}`)
    return d
  }

  advance (ms: number): void { this.t += ms }

  /** Writes files into a source folder (name → bytes) and remembers them. */
  write (src: string, files: Record<string, Buffer>): string {
    const dir = join(this.dir, src)
    mkdirSync(dir, { recursive: true })
    const held = this.files.get(dir) ?? new Map<string, Buffer>()
    for (const [name, bytes] of Object.entries(files)) { writeFileSync(join(dir, name), bytes); held.set(name, bytes) }
    this.files.set(dir, held)
    return dir
  }

  contentOf (dir: string): Map<string, Buffer> { return new Map(this.files.get(dir) ?? []) }

  /**
   * Every snapshot every device lists restores byte-exact on every device, and check --read-data
   * passes everywhere. Returns the problems found (empty: all good).
   */
  async verify (): Promise<string[]> {
    const problems: string[] = []
    for (const dev of this.devices) {
      await dev.sync()
      if (dev.writeOnly !== undefined) continue // it cannot list or read: the full devices check its snapshots
      const { snapshots, damaged } = await listSnapshots(dev.repo.packs, dev.repo.sodium, dev.repo.identity)
      if (damaged.length > 0) problems.push(`${dev.name}: ${damaged.length} damaged record(s)`)
      const listed = new Set(snapshots.map(s => formatId(s.id)))
      for (const id of this.expected.keys()) if (!listed.has(id)) problems.push(`${dev.name}: snapshot ${id.slice(0, 8)} is not listed`)
      for (const s of snapshots) {
        const want = this.expected.get(formatId(s.id))
        if (want === undefined) { problems.push(`${dev.name}: unexpected snapshot ${formatId(s.id).slice(0, 8)}`); continue }
        try {
          for await (const { path, node } of walkTree(dev.repo, s.record.tree)) {
            if (node.type !== 'file') continue
            const name = path.split('/').at(-1) ?? ''
            const parts: Uint8Array[] = []
            for (const c of node.content ?? []) parts.push(await dev.repo.loadBlob(c))
            const got = Buffer.concat(parts)
            if (!got.equals(want.get(name) ?? Buffer.alloc(0))) problems.push(`${dev.name}: ${path} of snapshot ${formatId(s.id).slice(0, 8)} differs`)
          }
        } catch (err: unknown) {
          problems.push(`${dev.name}: snapshot ${formatId(s.id).slice(0, 8)} does not restore: ${String(err)}`)
        }
      }
      const check = await checkRepository(dev.repo, { readData: true })
      for (const p of check.problems) problems.push(`${dev.name}: check: ${p.message}`)
    }
    return problems
  }

  async stop (): Promise<void> {
    for (const d of this.devices) await d.close()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
