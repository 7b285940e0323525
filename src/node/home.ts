/**
 * The composition root for one p2pbak home directory: loads the identity (asking for the passphrase
 * through the caller), opens the local share store and the index, and wires the repository, chunker
 * and archiver/restorer together. It holds no logic of its own beyond that wiring.
 *
 *   HOME/identity.json   key file (seed encrypted with Argon2id when a passphrase is set), or on a
 *                        write-only machine the write-only key file (docs/format/keys.md §11)
 *   HOME/config.json     repository parameters (chunker, compression, pack size)
 *   HOME/store/          the local share store (the embedded default's packs and snapshot records)
 *   HOME/index/          lmdb index and file cache (rebuildable)
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AlreadyExistsError, InvalidConfigError, NoRepositoryError, WriteOnlyError, errnoCode, errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'
import {
  createKeyFile, deriveDeviceKeyWrap, deriveGearTable, deriveIdentity, loadBackend, openKeyFileAsync, parseKeyFile,
  type Identity, type KdfParams, type SodiumBackend
} from '../crypto/index.js'
import { DEFAULT_CHUNKER_PARAMS, FastCdc, validateChunkerParams, type ChunkerParams } from '../chunking/index.js'
import type { LocalShareStore } from '../store/index.js'
import { parseNotifySettings, type NotifySettings } from './alert-settings.js'
import type { ErasurePackStore, ErasurePackStoreInit, HeadListing, ListBounds, PeerDirectory, RebuildSummary, RecordSigner, Repository, RepositoryInit } from '../repo/index.js'
import type { WriteOnlyKey, WriteOnlyKeyFile } from '../peers/index.js'
import { isWriteOnlyKeyText } from '../peers/write-only-key.js'
import { pathExists, writeFileAtomic, writeFileNew } from '../store/atomic.js'
import { assertPrivateHome } from './home-guard.js'

const log = scopedLogger('home')

/**
 * The repository's modules: the store (lmdb), the repository (zstd), the group's records. A home
 * imports them as it opens, while Argon2id runs on libuv's thread pool, so that on two cores the
 * two overlap (docs/benchmarks.md "Start-up and small commands"); `init`, `--help` and the like
 * never load them.
 */
interface RepoModules {
  store: typeof import('../store/index.js')
  repo: typeof import('../repo/index.js')
  peers: typeof import('../peers/index.js')
}

let repoModules: Promise<RepoModules> | undefined

async function importRepoModules (): Promise<RepoModules> {
  repoModules ??= Promise.all([import('../store/index.js'), import('../repo/index.js'), import('../peers/index.js')])
    .then(([store, repo, peers]) => ({ store, repo, peers }))
  return await repoModules
}

export const CONFIG_VERSION = 1

/** What {@link Home.syncIndex} did, and the head it read to do it (commands list snapshots from it). */
export interface IndexSync extends RebuildSummary {
  /** every record of the head as read before the sync (snapshots forgotten by a gc record already left out) */
  head: HeadListing
}

export interface HomeConfig {
  version: number
  userId: string
  created: string
  chunker: ChunkerParams
  compressionLevel: number
  packSize: number
  /** where alerts go (`p2pbak notify`, docs/cli.md "Alerts"); absent: no alerts */
  notify?: NotifySettings
}

export interface HomeOptions {
  home: string
  /** returns the passphrase, or null for none; called only when the key file needs one */
  passphrase: () => Promise<string | null>
  backend?: 'sodium-native' | 'libsodium-wrappers'
  kdf?: KdfParams
  /** how long, and how far, a friend's listing is followed (tests shrink these). @default repo/bounded-list.ts */
  listBounds?: ListBounds
  /**
   * The command's own modules, imported while Argon2id runs on the thread pool (it takes about as
   * long): imported before the home is opened, they made the key's derivation start that much later.
   */
  preload?: () => Promise<unknown>
}

export interface InitOptions extends Omit<HomeOptions, 'passphrase'> {
  passphrase: string | null
  /** an existing seed (recover); a fresh random one otherwise */
  seed?: Uint8Array
}

/**
 * The repository of a home that writes to its own disk: one pack written while the next fills (a local
 * write and its fsync take less time than filling a pack, so a second write in flight only costs a pack
 * buffer of memory: docs/benchmarks.md, "Where a publisher's memory goes"). The group's store keeps the
 * default, two, for its transfers to friends.
 */
function localRepoInit (config: HomeConfig): RepositoryInit {
  return { packSize: config.packSize, compressionLevel: config.compressionLevel, maxPendingPacks: 1 }
}

export class Home {
  /** run (once each) when the home closes: a network node started for this command, say */
  private readonly closers: Array<() => Promise<void>> = []
  /** a home shared by the daemon with the commands it runs: only the daemon really closes it */
  shared = false
  /** the group's pack store, once the home uses one */
  group: ErasurePackStore | undefined
  /** what the group's pack store is made with (HomeOptions.listBounds) */
  private groupInit: ErasurePackStoreInit = {}
  /** the clock of this home's commands (the daemon's, so tests can move it); gc grace periods run on it */
  now: () => number = Date.now

  private constructor (
    /** the repository's modules, imported by open() */
    private readonly m: RepoModules,
    readonly dir: string,
    readonly config: HomeConfig,
    readonly sodium: SodiumBackend,
    readonly identity: Identity,
    public repo: Repository,
    readonly cdc: FastCdc,
    readonly localStore: LocalShareStore,
    /** set on a write-only machine: its device certificate and key (it has no user secret key) */
    readonly writeOnly: WriteOnlyKey | undefined = undefined,
    /** set on a full home: the key that seals HOME/device.key (subkey 6 of the seed, docs/format/keys.md §12) */
    readonly deviceKeyWrap: Uint8Array | undefined = undefined
  ) {}

  /**
   * Throws WriteOnlyError, saying what to do instead, when this is a write-only machine: `what` (a
   * restore, a listing…) needs the full key.
   */
  requireFullKey (what: string): void {
    if (this.writeOnly === undefined) return
    throw new WriteOnlyError(`this is a write-only machine (${this.writeOnly.deviceCert.name}): it backs up, but cannot ${what}. Do it on one of your full machines, or set one up from your recovery phrase with \`p2pbak recover --phrase-file FILE\` and join it to the group`)
  }

  static paths (home: string): { identity: string, config: string, store: string, index: string } {
    return { identity: join(home, 'identity.json'), config: join(home, 'config.json'), store: join(home, 'store'), index: join(home, 'index') }
  }

  static async exists (home: string): Promise<boolean> {
    return await pathExists(Home.paths(home).identity)
  }

  /** Creates (or, with a seed, recreates) an identity in an empty home. Returns the recovery phrase. */
  static async init (opts: InitOptions): Promise<{ phrase: string, identity: Identity }> {
    await assertPrivateHome(opts.home)
    if (await Home.exists(opts.home)) throw new AlreadyExistsError(`${opts.home} already holds a p2pbak identity; use another --home, or delete it if you really mean to start over`)
    const sodium = await loadBackend(opts.backend)
    const seed = opts.seed ?? sodium.randomBytes(32)
    const identity = deriveIdentity(sodium, seed)
    const p = Home.paths(opts.home)
    await mkdir(opts.home, { recursive: true, mode: 0o700 })
    const config: HomeConfig = {
      version: CONFIG_VERSION, userId: identity.userId, created: new Date().toISOString(),
      chunker: DEFAULT_CHUNKER_PARAMS, compressionLevel: 3, packSize: 16 * 1024 * 1024
    }
    const keyFile = createKeyFile(sodium, seed, opts.passphrase, opts.kdf)
    // the identity first, and never over one another init or recover wrote meanwhile (its phrase
    // would be printed for a home it does not open); the loser writes nothing. A home killed
    // between the two has no config.json, which reads as the version-1 defaults (parseConfig).
    await writeFileNew(p.identity, JSON.stringify(keyFile, null, 2) + '\n', `${opts.home} already holds a p2pbak identity (another init or recover wrote it just now); use another --home`)
    await writeFileAtomic(p.config, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 })
    const { seedToPhrase } = await import('../crypto/phrase.js') // the word list: init and recover only
    return { phrase: seedToPhrase(seed), identity }
  }

  /**
   * Sets up a write-only machine in an empty home from its write-only key file (as exported by the
   * owner's full machine, or made from the phrase): the key file as given (it carries the device
   * key: no `device.key` is written, node/device-key.ts), its certificate in `group.json`. Nothing
   * here can read or delete a backup.
   */
  static async initWriteOnly (opts: { home: string, file: WriteOnlyKeyFile, key: WriteOnlyKey }): Promise<void> {
    await assertPrivateHome(opts.home)
    if (await Home.exists(opts.home)) throw new AlreadyExistsError(`${opts.home} already holds a p2pbak identity; use another --home, or delete it if you really mean to start over`)
    const p = Home.paths(opts.home)
    await mkdir(opts.home, { recursive: true, mode: 0o700 })
    // the key file first: it claims the home, so a second init at the same moment fails here having
    // written nothing (it wrote config.json and group.json before, and could leave the winner's home
    // with another person's). A home whose init stopped after the key file opens with the defaults
    // of config.json and with the key file's certificate (group-state.ts).
    await writeFileNew(p.identity, JSON.stringify(opts.file, null, 2) + '\n', `${opts.home} already holds a p2pbak identity (another init wrote it just now); use another --home`)
    const config: HomeConfig = {
      version: CONFIG_VERSION, userId: opts.key.identity.userId, created: new Date().toISOString(),
      chunker: DEFAULT_CHUNKER_PARAMS, compressionLevel: 3, packSize: 16 * 1024 * 1024
    }
    await writeFileAtomic(p.config, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 })
    const group = { version: 1, roster: null, deviceCert: opts.key.deviceCert, invites: [], roles: { contributeBytes: 0, publish: null } }
    await writeFileAtomic(join(opts.home, 'group.json'), JSON.stringify(group, null, 2) + '\n', { mode: 0o600 })
  }

  static async open (opts: HomeOptions): Promise<Home> {
    const home = await Home.openKeys(opts)
    if (opts.listBounds !== undefined) home.groupInit = { listBounds: opts.listBounds }
    return home
  }

  private static async openKeys (opts: HomeOptions): Promise<Home> {
    // root may open another user's home (a restore that sets owners); the daemon checks for itself (service.ts)
    await assertPrivateHome(opts.home, { rootMayUseOthers: true })
    const p = Home.paths(opts.home)
    let keyText: string
    try {
      keyText = await readFile(p.identity, 'utf8')
    } catch (err: unknown) {
      if (errnoCode(err) === 'ENOENT') throw new NoRepositoryError(`no p2pbak identity in ${opts.home}; run \`p2pbak init\` (or \`p2pbak recover\`) first`)
      throw err
    }
    if (isWriteOnlyKeyText(keyText)) return await Home.openWriteOnly(opts, keyText)
    const keyFile = parseKeyFile(keyText)
    const config = parseConfig(await readFile(p.config, 'utf8').catch(() => '{}'), keyFile)
    const sodium = await loadBackend(opts.backend)
    const passphrase = keyFile.kdf === null ? null : await opts.passphrase()
    // Argon2id starts (on libuv's thread pool with sodium-native) before the repository's modules load
    const [seed, m] = await Promise.all([openKeyFileAsync(sodium, keyFile, passphrase), importRepoModules(), opts.preload?.()])
    const identity = deriveIdentity(sodium, seed)
    if (identity.userId !== config.userId) throw new InvalidConfigError(`config.json in ${opts.home} belongs to user ${config.userId.slice(0, 8)}, the key file to ${identity.userId.slice(0, 8)}`)
    const store = await m.store.LocalShareStore.open(p.store)
    const index = m.store.IndexDb.open(p.index)
    const repo = new m.repo.Repository({ sodium, identity, packs: new m.repo.SingleStorePackStore(store), index }, localRepoInit(config))
    const cdc = new FastCdc(deriveGearTable(identity.chunkerKey), config.chunker)
    return new Home(m, opts.home, config, sodium, identity, repo, cdc, store, undefined, deriveDeviceKeyWrap(sodium, seed))
  }

  private static async openWriteOnly (opts: HomeOptions, keyText: string): Promise<Home> {
    const p = Home.paths(opts.home)
    const [m] = await Promise.all([importRepoModules(), opts.preload?.()])
    const file = m.peers.parseWriteOnlyKey(keyText)
    const config = parseConfig(await readFile(p.config, 'utf8').catch(() => '{}'), file)
    const sodium = await loadBackend(opts.backend)
    const key = m.peers.openWriteOnlyKey(sodium, file, file.kdf === null ? null : await opts.passphrase())
    if (key.identity.userId !== config.userId) throw new InvalidConfigError(`config.json in ${opts.home} belongs to user ${config.userId.slice(0, 8)}, the key file to ${key.identity.userId.slice(0, 8)}`)
    const store = await m.store.LocalShareStore.open(p.store)
    const index = m.store.IndexDb.open(p.index)
    const recordSigner: RecordSigner = { cert: key.deviceCert, ...m.peers.deviceSigningKey(sodium, key) }
    const repo = new m.repo.Repository({ sodium, identity: key.identity, packs: new m.repo.SingleStorePackStore(store), index, recordSigner }, localRepoInit(config))
    const cdc = new FastCdc(deriveGearTable(key.identity.chunkerKey), config.chunker)
    return new Home(m, opts.home, config, sodium, key.identity, repo, cdc, store, key)
  }

  /** From now on packs go to the group: erasure-coded shares on friends' nodes (local store as fallback). */
  useGroup (directory: PeerDirectory, init: ErasurePackStoreInit = {}): void {
    if (this.group !== undefined) return // the directory is live: one pack store serves every later change
    const packs = new this.m.repo.ErasurePackStore(this.localStore, directory, this.repo.index, { ...this.groupInit, ...init, ...(this.writeOnly !== undefined ? { releasesOldCopies: false } : {}) })
    this.group = packs
    this.repo = new this.m.repo.Repository({ sodium: this.sodium, identity: this.identity, packs, index: this.repo.index, ...(this.repo.recordSigner !== undefined ? { recordSigner: this.repo.recordSigner } : {}) }, { packSize: this.config.packSize, compressionLevel: this.config.compressionLevel })
  }

  onClose (fn: () => Promise<void>): void { this.closers.push(fn) }

  /** Writes config.json again (atomically) after a setting changed (`notify`). */
  async saveConfig (): Promise<void> {
    await writeFileAtomic(join(this.dir, 'config.json'), JSON.stringify(this.config, null, 2) + '\n', { mode: 0o600 })
  }

  /**
   * Makes the index agree with the store (packs added elsewhere, packs gone) and with the condemnation
   * records (docs/gc.md §5: no dedup against a condemned pack). See repo/rebuild-index.ts, repo/gc.ts.
   * The head is read once, here: a command that lists snapshots takes them from the result instead of
   * reading and opening every record a second time.
   */
  async syncIndex (): Promise<IndexSync> {
    // a write-only machine cannot open snapshot records: it reads the gc records with its gc view key
    // (docs/gc.md §6.3), or, from a key file without one, reconciles packs only
    if (this.writeOnly !== undefined && this.identity.gcView === null) return { ...await this.m.repo.rebuildIndex(this.repo), head: { snapshots: [], damaged: [], gc: [], forgotten: [] } }
    const head = await (this.writeOnly !== undefined ? this.m.repo.readGcHead : this.m.repo.readHead)(this.repo.packs, this.sodium, this.identity)
    await this.m.repo.syncCondemned(this.repo, this.now, head)
    return { ...await this.m.repo.rebuildIndex(this.repo), head }
  }

  async close (): Promise<void> {
    if (this.shared) {
      await this.repo.flush().catch((err: unknown) => { log.error('flushing the index failed: %s', errorMessage(err)) })
      return
    }
    await this.closeNow()
  }

  /** Closes even a shared home (the daemon at shutdown). */
  async closeNow (): Promise<void> {
    await this.repo.flush().catch((err: unknown) => { log.error('flushing the index failed: %s', errorMessage(err)) })
    for (const fn of this.closers.splice(0).reverse()) await fn().catch((err: unknown) => { log.error('closing %s: %s', this.dir, errorMessage(err)) })
    await this.repo.close()
  }
}

function parseConfig (text: string, keyFile: { userId: string }): HomeConfig {
  let raw: unknown
  try { raw = JSON.parse(text) } catch { throw new InvalidConfigError('config.json is not valid JSON') }
  const c = (raw ?? {}) as Partial<HomeConfig>
  if (c.version !== undefined && c.version > CONFIG_VERSION) throw new InvalidConfigError(`config.json has version ${c.version}; upgrade p2pbak`)
  // a missing or partial config falls back to the version-1 defaults (they are part of the format)
  const config: HomeConfig = {
    version: CONFIG_VERSION,
    userId: typeof c.userId === 'string' ? c.userId : keyFile.userId,
    created: typeof c.created === 'string' ? c.created : '',
    chunker: c.chunker ?? DEFAULT_CHUNKER_PARAMS,
    compressionLevel: typeof c.compressionLevel === 'number' ? c.compressionLevel : 3,
    packSize: typeof c.packSize === 'number' ? c.packSize : 16 * 1024 * 1024,
    ...(c.notify !== undefined ? { notify: parseNotifySettings(c.notify) } : {})
  }
  validateChunkerParams(config.chunker)
  return config
}
