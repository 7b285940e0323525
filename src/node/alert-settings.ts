/** The `notify` key of HOME/config.json (docs/cli.md "Alerts"): where alerts go and when they fire. */
import { InvalidConfigError } from '../errors.js'
import { shown } from '../util/text.js'

export interface NotifySettings {
  /** a shell command line; it gets the message in P2PBAK_ALERT_* variables and the alert as JSON on stdin */
  command: string
  /** alert when no backup of this host succeeded for this many days. @default 3 */
  noBackupDays: number
  /** alert when a snapshot's canLose falls below this. @default 1 */
  minCanLose: number
}

export const DEFAULT_NO_BACKUP_DAYS = 3
export const DEFAULT_MIN_CAN_LOSE = 1

export function parseNotifySettings (raw: unknown): NotifySettings {
  const n = (raw ?? {}) as Partial<NotifySettings>
  if (typeof n.command !== 'string' || n.command.trim() === '') throw new InvalidConfigError('config.json: notify.command must be a shell command line; run `p2pbak notify --command CMD` (or `notify --off`)')
  const days = n.noBackupDays ?? DEFAULT_NO_BACKUP_DAYS
  const canLose = n.minCanLose ?? DEFAULT_MIN_CAN_LOSE
  if (typeof days !== 'number' || !(days > 0)) throw new InvalidConfigError(`config.json: notify.noBackupDays must be a positive number of days, got ${shown(days)}`)
  if (typeof canLose !== 'number' || !Number.isInteger(canLose) || canLose < 0) throw new InvalidConfigError(`config.json: notify.minCanLose must be a whole number, 0 or more, got ${shown(canLose)}`)
  return { command: n.command, noBackupDays: days, minCanLose: canLose }
}
