/**
 * Alerts (docs/cli.md "Alerts"): conditions that need a person, sent once through the user's notify
 * command when they start and once more when they clear. Which alerts are active lives in
 * HOME/alerts.json (written atomically), so a daemon restart neither repeats nor forgets one.
 *
 * Each check is authoritative for a scope (a set of keys): after a job, that job's two keys; after
 * the daemon's retention policy ran, that job's retention key; in a daemon round, the friends, the
 * redundancy and the last-backup keys. An active alert of the scope the check no longer finds is
 * cleared; a condition not yet active is raised. A notify command that
 * fails leaves the alert unsent, and the next check sends it again.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { errorMessage } from '../errors.js'
import { writeFileAtomic } from '../store/index.js'
import { scopedLogger } from '../util/log.js'
import type { NotifySettings } from './alert-settings.js'
import { describeHook, hookSucceeded, runHook, type HookResult } from './hooks.js'

const log = scopedLogger('alerts')

export type AlertKind = 'job-failed' | 'items-unreadable' | 'retention-failed' | 'low-redundancy' | 'friend-unreachable' | 'no-backup'

/** A condition a check found now. `key` names it across checks (one alert per key). */
export interface Condition {
  key: string
  kind: AlertKind
  /** one line for people */
  message: string
  /** what the notify command gets on stdin with it (a job report, the snapshots concerned) */
  detail?: unknown
}

export interface ActiveAlert extends Condition {
  since: string
  /** when the notify command took it; null: not delivered yet (sent again at the next check) */
  sentAt: string | null
}

export interface AlertEvent { state: 'raised' | 'cleared', alert: ActiveAlert, result: HookResult | null }

interface AlertFile { version: 1, active: Record<string, ActiveAlert> }

/** What delivers an alert: the user's command (deliverByCommand), or another sender. */
export type Deliver = (event: Omit<AlertEvent, 'result'>, settings: NotifySettings) => Promise<HookResult>

export const deliverByCommand: Deliver = async (event, settings) => {
  const a = event.alert
  const message = event.state === 'raised' ? `p2pbak: ${a.message}` : `p2pbak: cleared: ${a.message}`
  return await runHook('notify', settings.command, {
    env: { P2PBAK_ALERT_STATE: event.state, P2PBAK_ALERT_KIND: a.kind, P2PBAK_ALERT_KEY: a.key, P2PBAK_ALERT_MESSAGE: message, P2PBAK_ALERT_SINCE: a.since },
    input: JSON.stringify({ state: event.state, kind: a.kind, key: a.key, message, since: a.since, detail: a.detail ?? null }, null, 2) + '\n',
    timeoutMs: 60_000
  })
}

export class AlertBook {
  private readonly path: string

  constructor (homeDir: string, private readonly settings: NotifySettings | undefined, private readonly now: () => number = Date.now, private readonly deliver: Deliver = deliverByCommand) {
    this.path = join(homeDir, 'alerts.json')
  }

  private async load (): Promise<AlertFile> {
    try {
      const f = JSON.parse(await readFile(this.path, 'utf8')) as AlertFile
      if (f.version === 1 && typeof f.active === 'object' && f.active !== null) return f
      log.error('%s has an unknown layout: starting with no active alerts', this.path)
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.error('%s cannot be read (%s): starting with no active alerts', this.path, errorMessage(err))
    }
    return { version: 1, active: {} }
  }

  async active (): Promise<ActiveAlert[]> {
    return Object.values((await this.load()).active)
  }

  /**
   * Raises the conditions not active yet, clears the active alerts `inScope` that `found` no longer
   * has, and sends what was not delivered. Returns what it sent (or tried to).
   */
  async check (inScope: (key: string) => boolean, found: readonly Condition[]): Promise<AlertEvent[]> {
    if (this.settings === undefined) return []
    const file = await this.load()
    const events: AlertEvent[] = []
    const at = new Date(this.now()).toISOString()
    const foundKeys = new Set(found.map(c => c.key))
    for (const c of found) {
      const old = file.active[c.key]
      // the message may change (more snapshots concerned): the alert is the same one, not sent again
      file.active[c.key] = old !== undefined ? { ...old, message: c.message, ...(c.detail !== undefined ? { detail: c.detail } : {}) } : { ...c, since: at, sentAt: null }
    }
    const cleared = Object.values(file.active).filter(a => inScope(a.key) && !foundKeys.has(a.key))
    for (const a of cleared) {
      delete file.active[a.key]
      // an alert never delivered needs no "cleared": nobody heard of it
      if (a.sentAt !== null) events.push(await this.send('cleared', a))
    }
    for (const a of Object.values(file.active)) {
      if (a.sentAt !== null) continue
      const e = await this.send('raised', a)
      if (e.result !== null && hookSucceeded(e.result)) a.sentAt = new Date(this.now()).toISOString()
      events.push(e)
    }
    await writeFileAtomic(this.path, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 })
    return events
  }

  private async send (state: AlertEvent['state'], alert: ActiveAlert): Promise<AlertEvent> {
    const settings = this.settings as NotifySettings
    const result = await this.deliver({ state, alert }, settings)
    if (hookSucceeded(result)) log('alert %s %s: %s', alert.key, state, alert.message)
    else log.error('the notify command %s for alert %s (%s); it is sent again at the next check', describeHook(result), alert.key, state)
    return { state, alert, result }
  }
}
