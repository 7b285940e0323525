/** `notify [--command CMD] [--max-backup-age D] [--min-can-lose N] | --off | --test`: where alerts go (docs/cli.md "Alerts"). */
import type { Command } from 'commander'
import { InvalidArgumentError } from '../../errors.js'
import { parseDuration } from '../../repo/retention.js'
import { DEFAULT_MIN_CAN_LOSE, DEFAULT_NO_BACKUP_DAYS, type NotifySettings } from '../../node/alert-settings.js'
import { printable } from '../../util/text.js'
import { print, printJson } from '../io.js'
import type { CommandContext } from '../context.js'

interface NotifyFlags { command?: string, maxBackupAge?: string, minCanLose?: string, off?: boolean, test?: boolean }

function wholeNumber (text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined
  const v = Number(text)
  if (!Number.isInteger(v) || v < 0) throw new InvalidArgumentError(`${flag} takes a whole number, 0 or more, got "${text}"`)
  return v
}

export function registerNotify (program: Command, ctx: () => CommandContext): void {
  program.command('notify')
    .description('set the command that is told when something needs you (a failed backup, a friend gone, low redundancy, no backup for days)')
    .option('--command <cmd>', 'a shell command line; it gets the message in $P2PBAK_ALERT_MESSAGE and the alert as JSON on stdin')
    .option('--max-backup-age <duration>', `alert when no backup of this host succeeded for this long (default ${DEFAULT_NO_BACKUP_DAYS}d)`)
    .option('--min-can-lose <n>', `alert when a snapshot can lose fewer than N more friends (default ${DEFAULT_MIN_CAN_LOSE})`)
    .option('--off', 'send no more alerts')
    .option('--test', 'send a test alert through the command now')
    .action(async (flags: NotifyFlags) => {
      const c = ctx()
      const ageMs = flags.maxBackupAge !== undefined ? parseDuration(flags.maxBackupAge) : undefined
      if (ageMs !== undefined && !(ageMs >= 3600_000)) throw new InvalidArgumentError(`--max-backup-age takes a duration of at least an hour, like 12h or 3d; got "${flags.maxBackupAge ?? ''}"`)
      const days = ageMs !== undefined ? ageMs / 86_400_000 : undefined
      const canLose = wholeNumber(flags.minCanLose, '--min-can-lose')
      const [{ AlertBook, deliverByCommand }, { describeHook, hookSucceeded }] = await Promise.all([import('../../node/alerts.js'), import('../../node/hooks.js')])
      const home = await c.openHome()
      try {
        const old = home.config.notify
        if (flags.off === true) {
          delete home.config.notify
          await home.saveConfig()
        } else if (flags.command !== undefined || days !== undefined || canLose !== undefined) {
          const command = flags.command ?? old?.command
          if (command === undefined || command.trim() === '') throw new InvalidArgumentError('give the command alerts go to first: p2pbak notify --command \'mail -s p2pbak me@example.org\'')
          const next: NotifySettings = { command, noBackupDays: days ?? old?.noBackupDays ?? DEFAULT_NO_BACKUP_DAYS, minCanLose: canLose ?? old?.minCanLose ?? DEFAULT_MIN_CAN_LOSE }
          home.config.notify = next
          await home.saveConfig()
        }
        const settings = home.config.notify
        let test: { ok: boolean, outcome: string } | undefined
        if (flags.test === true) {
          if (settings === undefined) throw new InvalidArgumentError('no notify command is set: p2pbak notify --command CMD --test')
          const r = await deliverByCommand({ state: 'raised', alert: { key: 'test', kind: 'job-failed', message: 'a test alert (p2pbak notify --test): alerts reach you', since: new Date().toISOString(), sentAt: null } }, settings)
          test = { ok: hookSucceeded(r), outcome: describeHook(r) }
        }
        const active = await new AlertBook(home.dir, settings).active()
        if (c.json) { printJson(c.io, { notify: settings ?? null, active, ...(test !== undefined ? { test } : {}) }); return }
        if (settings === undefined) print(c.io, 'alerts are off (p2pbak notify --command CMD turns them on)')
        else print(c.io, `alerts go to: ${printable(settings.command)} (no backup for ${settings.noBackupDays} day(s); a snapshot that can lose fewer than ${settings.minCanLose} friend(s))`)
        if (test !== undefined) print(c.io, `test alert: the command ${test.outcome}`)
        for (const a of active) print(c.io, `active since ${a.since}: ${printable(a.message)}${a.sentAt === null ? ' (not delivered yet)' : ''}`)
      } finally {
        await home.close()
      }
    })
}
