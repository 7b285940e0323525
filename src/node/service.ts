/**
 * The node as a service: one startable, stoppable unit that the `daemon` command, the demo, the
 * tests and the simulation can all run. It owns the home and the libp2p node for its lifetime, serves
 * the control socket (HOME/daemon.sock) where the commands of the same home are run one at a time,
 * writes HOME/node.json, and runs its round every `refreshMs`:
 *   1. refresh: reach every member device, learn its offer (network.ts)
 *   2. packs that live only on this disk go into the group (repair from zero), and packs placed
 *      with one or two friends are widened (local-packs.ts placeLocalPacks)
 *   3. upkeep: commitments, audits, repair, scrub (upkeep.ts); the watcher follows the `publish` paths
 *   4. the scheduled `publish` backup when it is due, then its retention policy (retention-job.ts)
 *   5. alerts, when notifications are set, at most every 5 minutes (alert-checks.ts)
 * Every step's failure is recorded in the round's report (`lastRound`, shown by `status`) and
 * logged under `p2pbak:daemon`; a failed step never stops the next one or the next round.
 *
 * Commands run through `runCommand`, which the CLI provides (the service never imports the CLI).
 * Before each one the group view is brought up to date (`ready`): the members' offers after any
 * roster change, so the first backup after `join` goes to friends.
 */
import { join } from 'node:path'
import { unlink } from 'node:fs/promises'
import { PassThrough } from 'node:stream'
import { LockedError, errorMessage } from '../errors.js'
import { writeFileAtomic } from '../store/index.js'
import { scopedLogger } from '../util/log.js'
import { checkNodeAlerts } from './alert-checks.js'
import { FolderWatcher, type WatchBatch } from './watch.js'
import { commandWaitingAfter, daemonAnswers, startControlServer, type ControlIo, type ControlServer } from './control.js'
import type { Home, HomeOptions } from './home.js'
import type { NetworkNode, NetworkOptions } from './network.js'
import { assertPrivateHome } from './home-guard.js'
import { openSession } from './session.js'
import { applyJobRetention } from './retention-job.js'
import { Upkeep } from './upkeep.js'
import type { PublishJob, Settings } from './group-state.js'
import type { LocalPacksResult } from '../repo/index.js'

const log = scopedLogger('daemon')

/** Timers of the service; tests drive rounds themselves with `round()` and a clock that never fires. */
export interface ServiceClock {
  now: () => number
  /** calls `fn` every `ms`; returns a function that stops it */
  every: (ms: number, fn: () => void) => () => void
}

export const SYSTEM_CLOCK: ServiceClock = {
  now: () => Date.now(),
  every: (ms, fn) => { const t = setInterval(fn, ms); return () => { clearInterval(t) } }
}

/** What the service lends to the commands it runs. */
export interface ServiceContext {
  home: Home
  net: NetworkNode
  upkeep: Upkeep
  /** brings the group view up to date before a command reads or places anything */
  ready: () => Promise<void>
  /** the last round's report */
  lastRound: () => RoundReport | undefined
}

export type RunCommand = (argv: string[], io: ControlIo, services: ServiceContext) => Promise<number>

export interface RoundReport {
  at: string
  durationMs: number
  /** packs moved from this disk into the group */
  placedLocal?: LocalPacksResult
  /** the scheduled backup, when it ran: its exit code and the end of its error output */
  publish?: { exitCode: number, stderr: string }
  /** the publish job's retention policy, when it ran after the scheduled backup */
  retention?: { forgotten: number, packsDeleted: number, error: string | null }
  /** steps that failed, as `step: message` */
  errors: string[]
}

export interface NodeServiceOptions {
  home: HomeOptions
  network: Omit<NetworkOptions, 'dht' | 'now'>
  /** round interval (ms). @default 30000 */
  refreshMs?: number
  /** override group.json's settings for this run (the daemon's flags) */
  settings?: Settings
  runCommand: RunCommand
  clock?: ServiceClock
  /**
   * How long a round goes on starting to move packs into the group (real ms; the user's commands
   * wait behind the round). A pack already on its way is not cut off: on a slow link it takes
   * longer than this, and cutting it would start it over every round. @default 20000
   */
  placeBudgetMs?: number
}

export class NodeService implements ServiceContext {
  private stopTimer: (() => void) | undefined
  private readonly stopping = new AbortController()
  private roundPending = false
  private last: RoundReport | undefined
  private control: ControlServer | undefined

  private constructor (
    readonly home: Home,
    readonly net: NetworkNode,
    readonly upkeep: Upkeep,
    readonly settings: Settings,
    private readonly opts: NodeServiceOptions,
    private readonly clock: ServiceClock
  ) {}

  get refreshMs (): number { return this.opts.refreshMs ?? 30_000 }
  get socketPath (): string { return join(this.home.dir, 'daemon.sock') }
  get nodeJsonPath (): string { return join(this.home.dir, 'node.json') }

  /**
   * Opens the home, starts the node, serves the control socket and starts the rounds. Throws
   * LockedError when a daemon already serves this home.
   */
  static async start (opts: NodeServiceOptions): Promise<NodeService> {
    await assertPrivateHome(opts.home.home)
    const sock = join(opts.home.home, 'daemon.sock')
    if (await daemonAnswers(sock)) throw new LockedError(`a daemon already runs for ${opts.home.home}; stop it first (or use another --home)`)
    const clock = opts.clock ?? SYSTEM_CLOCK
    const { home, net } = await openSession(opts.home, { ...opts.network, force: true, dht: true, now: clock.now })
    if (net === undefined) throw new Error('unreachable: a forced session has a node')
    home.shared = true
    const settings: Settings = { ...net.state.file.settings, ...opts.settings }
    net.applySettings(settings)
    const refreshMs = opts.refreshMs ?? 30_000
    const service = new NodeService(home, net, new Upkeep(home, net, settings, refreshMs, clock.now), settings, opts, clock)
    try {
      await service.listen()
    } catch (err: unknown) {
      await home.closeNow()
      throw err
    }
    return service
  }

  private async listen (): Promise<void> {
    await writeFileAtomic(this.nodeJsonPath, JSON.stringify({ peerId: this.net.peerId, addrs: this.net.addrs(), pid: process.pid }, null, 2) + '\n')
    this.control = await startControlServer(this.socketPath, async (argv, io) => {
      // each command sees the group as it is now, not packs decoded for an earlier command, and
      // starts clean: an earlier command's failed pack write is that command's failure
      this.home.repo.packs.dropCaches?.()
      const stale = await this.home.repo.settle()
      if (stale !== undefined) log('an earlier command left a failed pack write: %s', errorMessage(stale))
      try {
        return await this.opts.runCommand(argv, io, this)
      } finally {
        await this.afterCommand()
      }
    })
    // at most one round queued or running: rounds slower than the interval must not pile up in
    // front of the user's commands
    this.stopTimer = this.clock.every(this.refreshMs, () => {
      if (this.roundPending || this.control === undefined) return
      this.roundPending = true
      void this.control.enqueue(async () => await this.round()).finally(() => { this.roundPending = false })
    })
  }

  /**
   * Between commands the daemon keeps what it serves, not a backup's tools: decoded packs, share
   * buffers, pack buffers and the compression workers go (the next command makes them again).
   */
  private async afterCommand (): Promise<void> {
    this.home.repo.packs.dropCaches?.()
    try {
      if (!await this.home.repo.releaseIdle()) log('a write is still under way after the command: its buffers stay until the next one')
    } catch (err: unknown) {
      log.error('releasing the repository\'s buffers after a command failed: %s', errorMessage(err))
    }
  }

  /** (bound: commands get it as a plain function) */
  readonly ready = async (): Promise<void> => {
    try {
      await this.net.ready()
    } catch (err: unknown) {
      // the command goes on with what is known; it says where its data went
      log.error('refreshing the group before a command failed: %s', errorMessage(err))
    }
    if (this.net.roster !== null) this.home.useGroup(this.net.directory)
  }

  readonly lastRound = (): RoundReport | undefined => this.last

  /** Queues a round behind the commands already waiting (what the timer does), and waits for it. */
  async runRound (): Promise<RoundReport> {
    const control = this.control
    if (control === undefined) throw new Error('the service is not listening')
    return await control.enqueue(async () => await this.round())
  }

  /** One round (see the top of this file); runs in the command queue when the timer starts it. */
  async round (): Promise<RoundReport> {
    const started = this.clock.now()
    const report: RoundReport = { at: new Date(started).toISOString(), durationMs: 0, errors: [] }
    const signal = this.stopping.signal
    const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
      if (signal.aborted) return
      try {
        await fn()
      } catch (err: unknown) {
        if (signal.aborted) return
        report.errors.push(`${name}: ${errorMessage(err)}`)
        log.error('round step %s failed: %s', name, errorMessage(err))
      }
    }
    const stale = await this.home.repo.settle()
    if (stale !== undefined) log('a command left a failed pack write: %s', errorMessage(stale))
    // a device that is connected but stalls (a suspended laptop) must not hold the command queue
    await step('refresh', async () => { await this.net.refreshPatiently() })
    if (this.net.roster !== null) {
      this.home.useGroup(this.net.directory)
      const group = this.home.group
      // backups from before the group (or from while no friend answered) move into the group. A
      // round starts no pack after its budget; the pack on its way goes on (on a slow link, cutting
      // it off would start it over every round) unless a user's command waits once the budget is spent
      if (group !== undefined) {
        await step('place local packs', async () => {
          const startUntil = Date.now() + (this.opts.placeBudgetMs ?? 20_000)
          const giveWay = commandWaitingAfter(this.control, startUntil)
          try {
            report.placedLocal = await group.placeLocalPacks({ signal: AbortSignal.any([signal, giveWay.signal]), startUntil })
          } catch (err: unknown) {
            if (!giveWay.signal.aborted || signal.aborted) throw err
            log('moving packs into the group gave way to a command (next round goes on): %s', errorMessage(err))
          } finally {
            giveWay.done()
          }
        })
      }
      // audits, repair, scrub: bounded so that the user's commands never wait long
      await step('upkeep', async () => {
        const r = await this.upkeep.round(Math.min(30_000, Math.max(2_000, this.refreshMs)), signal)
        report.errors.push(...r.errors.map(e => `upkeep ${e}`))
      })
      this.syncWatcher()
      await step('publish', async () => { await this.scheduledPublish(report) })
      // alerts about friends, redundancy and the last backup: every few minutes, not every round
      const alertEveryMs = Math.min(300_000, this.refreshMs * 10)
      if (this.home.config.notify !== undefined && this.clock.now() - this.lastAlertCheck >= alertEveryMs) {
        this.lastAlertCheck = this.clock.now()
        await step('alerts', async () => { await checkNodeAlerts(this.home, this.net, this.settings.offlineGraceMs, this.clock.now) })
      }
    }
    report.durationMs = this.clock.now() - started
    this.last = report
    return report
  }

  private lastAlertCheck = Number.NEGATIVE_INFINITY
  /** continuous mode (publish --watch): the watcher of the published folders, and its settings */
  private watcher: { w: FolderWatcher, key: string } | undefined

  /** Starts, restarts or stops the watcher so that it matches roles.publish. */
  private syncWatcher (): void {
    const p = this.net.state.file.roles.publish
    const key = p?.watchQuietMs === undefined ? '' : JSON.stringify([p.paths, p.watchQuietMs])
    if ((this.watcher?.key ?? '') === key) return
    this.watcher?.w.close()
    this.watcher = undefined
    if (p === null || p.watchQuietMs === undefined || key === '') return
    const w = new FolderWatcher(p.paths, { quietMs: p.watchQuietMs, now: this.clock.now, onBatch: (batch) => { void this.enqueueWatchRun(w, batch) } })
    this.watcher = { w, key }
    w.start()
    log('watching %s (quiet period %d ms)', p.paths.join(', '), p.watchQuietMs)
  }

  get watchFailure (): string | null { return this.watcher?.w.failure ?? null }

  private async enqueueWatchRun (w: FolderWatcher, batch: WatchBatch): Promise<void> {
    const control = this.control
    if (control === undefined || this.stopping.signal.aborted) return
    try {
      await control.enqueue(async () => { await this.watchRun(w, batch) })
    } catch (err: unknown) {
      log.error('a continuous-mode backup could not run: %s', errorMessage(err))
      w.giveBack(batch)
    }
  }

  /** One continuous-mode backup: only the changed paths, or a full run when something may have been missed. */
  private async watchRun (w: FolderWatcher, batch: WatchBatch): Promise<void> {
    const p = this.net.state.file.roles.publish
    if (p === null || this.watcher?.w !== w) return // publishing changed since: the new watcher's first run is full
    // a full run owed since before the schedule's last (full) run started is covered by it; the
    // changes seen since are not
    const full = batch.kind === 'full' && !(p.lastRunMs !== undefined && p.lastRunMs >= batch.since)
    if (batch.kind === 'full' && !full) log('continuous mode: a full run was owed (%s), and the schedule ran one since', batch.reason)
    if (!full && batch.paths.length === 0) return
    const list = full ? undefined : join(this.home.dir, `watch-changes-${process.pid}.txt`)
    try {
      if (list !== undefined) await writeFileAtomic(list, batch.paths.join('\0'), { mode: 0o600 })
      const { exitCode, errText, reportPath } = await this.runPublishBackup(p, list !== undefined ? ['--changed-from', list] : [])
      log('continuous-mode backup (%s) exited %d%s', full ? 'full' : `${batch.paths.length} changed path(s)`, exitCode, errText !== '' ? `: ${errText}` : '')
      if (exitCode !== 0 && exitCode !== 3) {
        w.giveBack(batch) // tried again with the next batch
      } else if (full) {
        // a full run is what the schedule does: it need not run again right away
        p.lastRunMs = this.clock.now()
        await this.net.state.save()
      }
      // only after a complete snapshot: older copies of what could not be read now stay
      if (exitCode === 0 && await this.retention(p, 'continuous', reportPath) !== undefined) await this.net.state.save()
    } finally {
      if (list !== undefined) await unlink(list).catch((err: unknown) => { log('cannot remove %s: %s', list, errorMessage(err)) })
    }
  }

  /**
   * `backup` of the published folders with their hooks, as the `publish` job: its exit code, the end
   * of its stderr, and where its report went (from its `--json` output).
   */
  private async runPublishBackup (p: PublishJob, extra: string[]): Promise<{ exitCode: number, errText: string, reportPath: string | null }> {
    const stdout = new PassThrough()
    const out: Buffer[] = []
    let outBytes = 0
    stdout.on('data', (b: Buffer) => { outBytes += b.byteLength; if (outBytes <= 64 * 1024 * 1024) out.push(b) })
    const stderr = new PassThrough()
    let errText = ''
    stderr.on('data', (b: Buffer) => { errText = (errText + b.toString('utf8')).slice(-2000) })
    const hooks = [...(p.preHook !== undefined ? ['--pre-hook', p.preHook] : []), ...(p.postHook !== undefined ? ['--post-hook', p.postHook] : [])]
    const exitCode = await this.opts.runCommand(['--json', 'backup', ...p.paths, '--tag', 'published', '--job', 'publish', ...hooks, ...extra], {
      stdout, stderr, stdin: new PassThrough(), env: { P2PBAK_HOME: this.home.dir }, cwd: undefined, signal: this.stopping.signal
    }, this)
    return { exitCode, errText: errText.trim(), reportPath: reportPathOf(Buffer.concat(out).toString('utf8')) }
  }

  /** The publish job's retention policy after one of its backups succeeded (retention-job.ts). */
  private async retention (p: PublishJob, trigger: 'scheduled' | 'continuous', reportPath: string | null): Promise<RoundReport['retention']> {
    if (this.net.state.file.roles.publish !== p) return undefined // publishing changed meanwhile
    const outcome = await applyJobRetention(this.home, p, { trigger, reportPath, signal: this.stopping.signal })
    if (outcome === undefined) return undefined
    return { forgotten: outcome.forgotten.length, packsDeleted: outcome.pruned?.packsDeleted ?? 0, error: outcome.error }
  }

  /** Runs the `publish` backup when it is due (roles.publish: paths, every, last run). */
  private async scheduledPublish (report: RoundReport): Promise<void> {
    const p = this.net.state.file.roles.publish
    if (p === null || p.paths.length === 0) return
    const now = this.clock.now()
    if (p.lastRunMs !== undefined && now - p.lastRunMs < p.everyMs) return
    p.lastRunMs = now
    await this.net.state.save()
    const { exitCode, errText, reportPath } = await this.runPublishBackup(p, [])
    report.publish = { exitCode, stderr: errText }
    if (exitCode !== 0) {
      report.errors.push(`publish: the scheduled backup of ${p.paths.join(', ')} exited ${exitCode}${errText !== '' ? `: ${errText.split('\n').slice(-3).join(' / ')}` : ''}`)
      return
    }
    const retention = await this.retention(p, 'scheduled', reportPath)
    if (retention === undefined) return
    report.retention = retention
    await this.net.state.save()
    if (retention.error !== null) report.errors.push(`retention: the policy of ${p.paths.join(', ')} failed: ${retention.error}`)
  }

  /** Stops the rounds, the control socket and the node; waits (bounded) for the round in flight. */
  async stop (): Promise<void> {
    this.stopTimer?.()
    this.watcher?.w.close()
    this.watcher = undefined
    this.stopping.abort()
    const control = this.control
    if (control !== undefined) {
      await control.close()
      // the round in flight stops at its next await; a stuck command is not waited for long
      await Promise.race([control.idle(), new Promise(resolve => setTimeout(resolve, 10_000).unref())])
    }
    await unlink(this.nodeJsonPath).catch((err: unknown) => { log('cannot remove %s: %s', this.nodeJsonPath, errorMessage(err)) })
    await this.home.closeNow()
  }
}

/** The report path a `backup --json` printed, or null (the backup failed, or printed something else). */
function reportPathOf (json: string): string | null {
  try {
    const v = JSON.parse(json) as { report?: unknown }
    return typeof v.report === 'string' ? v.report : null
  } catch (err: unknown) {
    log('the scheduled backup\'s output is not JSON (%s): its report gets no retention section', errorMessage(err))
    return null
  }
}
