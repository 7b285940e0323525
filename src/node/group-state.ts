/**
 * What a node remembers about its group, in its home:
 *   HOME/device.key   the libp2p device key, sealed under the identity (node/device-key.ts), mode 0600
 *   HOME/group.json   roster, this device's certificate, invites issued, roles (contribute, publish)
 *   HOME/peers.json   the peer book: last known addresses of member devices
 * Every write is atomic (temp + fsync + rename).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { PrivateKey } from '@libp2p/interface'
import { errnoCode, InvalidConfigError } from '../errors.js'
import { writeFileAtomic } from '../store/index.js'
import { decodeRoster, encodeRoster, type DeviceCert, type IssuedInvite, type Roster } from '../peers/index.js'
import { loadDeviceKey } from './device-key.js'
import type { Home } from './home.js'
import type { RetentionRun, RetentionSettings } from './retention-settings.js'

export interface Roles {
  /** bytes this node offers to friends; 0 = not a persister; null = automatic (AUTO_CONTRIBUTE_SHARE of free disk) */
  contributeBytes: number | null
  /**
   * Folders this node backs up by itself, how often (ms), and when it last did: the daemon's
   * scheduled backup, with its hooks (shell command lines; docs/cli.md "Hooks and reports") and its
   * retention policy (docs/cli.md "publish")
   */
  publish: PublishJob | null
}

export interface PublishJob {
  paths: string[]
  everyMs: number
  lastRunMs?: number
  preHook?: string
  postHook?: string
  /** continuous mode: back up changes after this much quiet */
  watchQuietMs?: number
  /** the retention policy the daemon applies after the job's backups (parseRetentionSettings reads it) */
  retention?: RetentionSettings
  /** the policy's last run */
  lastRetention?: RetentionRun
}

/**
 * Upkeep and fairness settings (all optional; daemon flags override them for one run):
 * docs/placement-and-repair.md §8-§11.
 */
export interface Settings {
  /** time between two storage-proof challenges of one share (ms). @default 24 h */
  auditIntervalMs?: number
  /** how long a holder may be unreachable before its shares are rebuilt elsewhere (ms). @default 72 h */
  offlineGraceMs?: number
  /** proof bytes per hour the audits may move and make holders read. @default 512 MiB */
  auditBytesPerHour?: number
  /** bytes per hour this persister reads to check what it holds. @default 2 GiB */
  scrubBytesPerHour?: number
  /** a person may use up to this multiple of what they give. @default 2 */
  reciprocityMultiple?: number
  /** everyone may use at least multiple × this, even before giving anything. @default 1 GiB */
  reciprocityGraceBytes?: number
  /** shares and records this node sends, at most this many KiB per second (restic's --limit-upload); absent: no limit */
  limitUploadKiB?: number
  /** shares and records this node receives as answers, at most this many KiB per second (--limit-download); absent: no limit */
  limitDownloadKiB?: number
}

export interface GroupFile {
  version: 1
  roster: Roster | null
  deviceCert: DeviceCert | null
  invites: IssuedInvite[]
  roles: Roles
  settings?: Settings
  /**
   * After a roster lowered the retention policy: the old minimum age still applies to deletes until
   * `untilMs` (a lowering takes effect only once the old period has passed, so a stolen admin seed
   * cannot lower it and delete at once).
   */
  retentionFloor?: { minShardAgeDays: number, untilMs: number }
  /** the versions before `roster`, oldest first, as keptHistory keeps them (forks are resolved within them) */
  rosterHistory?: Roster[]
  /** the last roster forks this node saw (docs/format/group.md §5.6), newest last, at most 8 */
  rosterForks?: RosterForkNote[]
}

/** A fork as `group members` reports it. */
export interface RosterForkNote {
  serial: number
  /** hashes of the two versions; `kept` is the one the group follows */
  kept: string
  dropped: string
  /** who signed each */
  keptBy: string
  droppedBy: string
  /** one member signed both: it forked the roster on purpose */
  equivocation: boolean
  at: number
}

export type PeerBook = Record<string, { addrs: string[], lastSeen: number }>

/** Until the user says otherwise, a node offers its friends this share of the free space on its disk. */
export const AUTO_CONTRIBUTE_SHARE = 0.1
export const DEFAULT_ROLES: Roles = { contributeBytes: null, publish: null }

export class GroupState {
  private constructor (
    readonly home: string,
    readonly deviceKey: PrivateKey,
    public file: GroupFile,
    public peers: PeerBook
  ) {}

  /** The group state of an open home: its device key needs the home's identity (docs/format/keys.md §12). */
  static async load (opened: Home): Promise<GroupState> {
    const home = opened.dir
    const deviceKey = await loadDeviceKey(opened)
    // a write-only machine's certificate is in its key file (the source of truth: an `init --write-only`
    // that stopped before it wrote group.json leaves none there), and it gives no space unless told to
    const writeOnly = opened.writeOnly
    const fresh: GroupFile = writeOnly === undefined
      ? { version: 1, roster: null, deviceCert: null, invites: [], roles: { ...DEFAULT_ROLES } }
      : { version: 1, roster: null, deviceCert: writeOnly.deviceCert, invites: [], roles: { ...DEFAULT_ROLES, contributeBytes: 0 } }
    const file = await readJson<GroupFile>(join(home, 'group.json'), fresh)
    if (writeOnly !== undefined) file.deviceCert = writeOnly.deviceCert
    if (file.roster !== null) file.roster = decodeRoster(encodeRoster(file.roster)) // validates
    if (file.rosterHistory !== undefined) file.rosterHistory = file.rosterHistory.map(r => decodeRoster(encodeRoster(r)))
    const peers = await readJson<PeerBook>(join(home, 'peers.json'), {})
    return new GroupState(home, deviceKey, file, peers)
  }

  async save (): Promise<void> {
    await writeFileAtomic(join(this.home, 'group.json'), JSON.stringify(this.file, null, 2) + '\n', { mode: 0o600 })
  }

  async savePeers (): Promise<void> {
    await writeFileAtomic(join(this.home, 'peers.json'), JSON.stringify(this.peers, null, 2) + '\n', { mode: 0o600 })
  }

  rememberAddrs (peerId: string, addrs: string[], now = Date.now()): void {
    if (addrs.length === 0) return
    this.peers[peerId] = { addrs: [...new Set(addrs)], lastSeen: now }
  }
}

async function readJson<T> (path: string, fallback: T): Promise<T> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err: unknown) {
    if (errnoCode(err) === 'ENOENT') return fallback
    throw err
  }
  try {
    return JSON.parse(text) as T
  } catch (err: unknown) {
    throw new InvalidConfigError(`${path} is not valid JSON`, { cause: err })
  }
}
