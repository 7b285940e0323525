/**
 * When a node asks its friends what they offer again (the refresh, network.ts): before a command
 * places or looks for anything, the offers must be those of the current roster. This decides when a
 * refresh is due, shares one run between concurrent callers, and runs another for a caller whose
 * roster changed after the running one started (a newcomer that run did not ask).
 */
import { errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('node')

/** Asking a newcomer that answered "not a member" (it is still taking the roster) again: this many times, waiting 300, 600, 900 ms. */
const JOINING_RETRIES = 3
const JOINING_RETRY_MS = 300
/**
 * How long a command waits for a refresh once a friend who may take shares has answered: a device
 * that is connected but does not answer (a suspended laptop, a stalled peer) must not hold every
 * command for its whole retry budget (about 40 s); the refresh goes on, and answers still count.
 */
export const READY_PATIENCE_MS = 15_000
/** how often a patient waiter looks again (the refresh's end wakes it at once) */
const PATIENCE_POLL_MS = 200

export interface RefreshRun {
  /** asks every member device; resolves with the devices that answered "not a member" (a join still in progress on their side) */
  run: (timeoutMs: number) => Promise<ReadonlySet<string>>
  /** the roster's serial now (-1: no roster) */
  serial: () => number
  /** true while no friend who may take shares answered, though the roster has some */
  nobody: () => boolean
  now: () => number
  /** see READY_PATIENCE_MS (tests set it shorter) */
  patienceMs?: number
}

export class RefreshGate {
  /** the refresh running now, and the roster serial it started with */
  private running: Promise<void> | undefined
  private runningSerial = -1
  /** when the running refresh started (wall clock, ms): the patience counts from there */
  private runningSince = 0
  /** the roster serial and the clock when the last refresh finished (-1: none yet) */
  private doneSerial = -1
  private doneAtMs = 0
  private joining: ReadonlySet<string> = new Set()

  constructor (private readonly r: RefreshRun) {}

  /**
   * A refresh runs when none has finished since the roster last changed (a join, a newcomer, a
   * removal), or when no friend answered the last one and it is older than `retryAfterMs` (friends
   * may have come online since). A newcomer asked while it was still taking the roster from its join
   * answers "not a member" for a moment: it is asked again, a few times, before anything is placed
   * without it. Bounded by the refresh's own dial timeouts, and by the patience (`patiently`).
   */
  async ready (opts: { retryAfterMs?: number, timeoutMs?: number } = {}): Promise<void> {
    const serial = this.r.serial()
    if (serial < 0) return
    const stale = this.doneSerial !== serial || (this.r.nobody() && this.r.now() - this.doneAtMs > (opts.retryAfterMs ?? 10_000))
    if (stale || this.running !== undefined) await this.patiently(serial, this.refresh(opts.timeoutMs))
    for (let i = 1; i <= JOINING_RETRIES && this.joining.size > 0 && this.r.nobody(); i++) {
      log('%d member device(s) had not taken the roster yet: asking again (%d of %d)', this.joining.size, i, JOINING_RETRIES)
      await new Promise(resolve => setTimeout(resolve, JOINING_RETRY_MS * i))
      await this.patiently(serial, this.refresh(opts.timeoutMs))
    }
  }

  /**
   * True once the running refresh has run longer than the patience: the devices that have not
   * answered it yet count as away (network.ts `candidates`) until they answer or it ends.
   */
  overdue (): boolean {
    return this.running !== undefined && Date.now() - this.runningSince >= this.patienceMs
  }

  /**
   * Waits for `refresh` (one for roster `serial`). Once the refresh running for that roster is
   * overdue, the wait ends as soon as some friend who may take shares has answered it (`nobody`
   * false: the devices that have not answered count as away by then); while nobody has, or while an
   * older roster's refresh still runs, it waits on. A refresh left running is not abandoned: it ends
   * on its own timeouts (its failures are logged), and the next caller joins it.
   */
  private async patiently (serial: number, refresh: Promise<void>): Promise<void> {
    let settled = false
    const done = refresh.then(() => { settled = true }, () => { settled = true })
    while (!settled) {
      if (this.runningSerial === serial && this.overdue() && !this.r.nobody()) {
        log('a refresh still waits for some member devices after %d ms: the command goes on with the answers it has', this.patienceMs)
        refresh.catch((err: unknown) => { log('the refresh left running failed: %s', errorMessage(err)) })
        return
      }
      let timer: NodeJS.Timeout | undefined
      await Promise.race([done, new Promise<void>(resolve => { timer = setTimeout(resolve, PATIENCE_POLL_MS) })])
      clearTimeout(timer)
    }
    await refresh
  }

  private get patienceMs (): number { return this.r.patienceMs ?? READY_PATIENCE_MS }

  /**
   * One refresh, waited for patiently (the daemon's round: a stalled device must not hold the
   * command queue for its whole retry budget; the refresh left running is joined by the next caller).
   */
  async refreshPatiently (timeoutMs?: number): Promise<void> {
    await this.patiently(this.r.serial(), this.refresh(timeoutMs))
  }

  /** Waits for a refresh left running (a node that stops), at most `timeoutMs`; false if it still runs. */
  async idle (timeoutMs: number): Promise<boolean> {
    const running = this.running
    if (running === undefined) return true
    let timer: NodeJS.Timeout | undefined
    const ended = await Promise.race([running.then(() => true, () => true), new Promise<boolean>(resolve => { timer = setTimeout(() => { resolve(false) }, timeoutMs) })])
    clearTimeout(timer)
    return ended
  }

  /** One refresh; concurrent calls share it, unless it started before the roster changed. */
  async refresh (timeoutMs = 5_000): Promise<void> {
    for (;;) {
      const serial = this.r.serial()
      const running = this.running
      if (running !== undefined) {
        const startedFor = this.runningSerial
        await running
        if (startedFor === serial) return
        continue
      }
      this.runningSerial = serial
      this.runningSince = Date.now()
      this.running = this.r.run(timeoutMs).then(joining => { this.joining = joining }).finally(() => { this.running = undefined })
      await this.running
      this.doneSerial = serial
      this.doneAtMs = this.r.now()
      return
    }
  }
}
