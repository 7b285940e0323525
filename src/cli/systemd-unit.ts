/**
 * The systemd unit `service install` writes for the daemon. Pure: text in, text out. The passphrase is
 * never in the unit: it comes from a credential file (`LoadCredential=`, read by the daemon from
 * $CREDENTIALS_DIRECTORY/p2pbak-passphrase) or from an environment file the unit names.
 */
import { InvalidArgumentError } from '../errors.js'
import { PASSPHRASE_CREDENTIAL } from './passphrase.js'

export interface UnitOptions {
  /** a user unit (systemctl --user) rather than a system one */
  user: boolean
  /** absolute path of the node binary */
  node: string
  /** absolute path of bin/p2pbak.js */
  bin: string
  /** absolute home directory */
  home: string
  /** extra arguments for `p2pbak daemon` (--listen, --announce, …) */
  daemonArgs: readonly string[]
  /** a file holding the passphrase, loaded as the credential p2pbak-passphrase */
  passphraseFile?: string
  /** an environment file (P2PBAK_PASSPHRASE=…), read by systemd */
  environmentFile?: string
  /** a system unit's user and group: the home's owner (the daemon refuses a home it does not own) */
  runAs?: { uid: number, gid: number }
}

/** The unit file's text. */
export function systemdUnit (o: UnitOptions): string {
  for (const [what, p] of [['node', o.node], ['bin', o.bin], ['home', o.home], ['passphrase file', o.passphraseFile], ['environment file', o.environmentFile]] as const) {
    if (p !== undefined && !p.startsWith('/')) throw new InvalidArgumentError(`the ${what} path must be absolute, got ${p}`)
    if (p !== undefined && /[\n\r]/.test(p)) throw new InvalidArgumentError(`the ${what} path must not hold a line break`)
  }
  const exec = [o.node, o.bin, '--home', o.home, 'daemon', ...o.daemonArgs].map(quoteArg).join(' ')
  const lines = [
    '# written by `p2pbak service install`; remove with `p2pbak service uninstall`',
    '[Unit]',
    `Description=p2pbak backup daemon for ${escapeSpecifiers(o.home)}`,
    // a user manager has no network-online.target; its units start once the user session is up
    ...(o.user ? [] : ['After=network-online.target', 'Wants=network-online.target']),
    '',
    '[Service]',
    'Type=simple',
    ...(!o.user && o.runAs !== undefined ? [`User=${o.runAs.uid}`, `Group=${o.runAs.gid}`] : []),
    `ExecStart=${exec}`,
    // the passphrase: a credential (systemd copies the file somewhere only this service can read) or an
    // environment file; never in this file, which anyone may read
    ...(o.passphraseFile !== undefined ? [`LoadCredential=${PASSPHRASE_CREDENTIAL}:${escapeSpecifiers(o.passphraseFile)}`] : []),
    ...(o.environmentFile !== undefined ? [`EnvironmentFile=${escapeSpecifiers(o.environmentFile)}`] : []),
    // the daemon stops cleanly on SIGINT (as on Ctrl-C): node.json stays, the socket is removed
    'KillSignal=SIGINT',
    'TimeoutStopSec=60',
    'Restart=on-failure',
    'RestartSec=30',
    'UMask=0077',
    'NoNewPrivileges=yes',
    '',
    '[Install]',
    `WantedBy=${o.user ? 'default.target' : 'multi-user.target'}`,
    ''
  ]
  return lines.join('\n')
}

/**
 * One ExecStart= word: double-quoted, with backslash and quote escaped, `%` doubled (specifiers) and
 * `$` doubled (variable expansion), so any path or argument reaches the daemon as it is.
 */
export function quoteArg (arg: string): string {
  if (/[\n\r]/.test(arg)) throw new InvalidArgumentError('a daemon argument must not hold a line break')
  const escaped = arg.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$')
  return /^[A-Za-z0-9_@+=:,./-]+$/.test(arg) ? arg : `"${escaped}"`
}

function escapeSpecifiers (text: string): string {
  return text.replace(/%/g, '%%')
}
