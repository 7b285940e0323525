/**
 * `service install [--user] [--no-start]`, `service uninstall`: the daemon as a systemd service. The unit
 * is written (src/cli/systemd-unit.ts), then enabled and started with systemctl when it is present and
 * --no-start is not given. Other init systems: docs/cli.md, "Without systemd".
 */
import type { Command } from 'commander'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { delimiter, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { errnoCode, InvalidArgumentError, NoRepositoryError, NotFoundError, RefusedError } from '../../errors.js'
import { print, printErr, printJson } from '../io.js'
import type { CliIo } from '../io.js'
import { systemdUnit } from '../systemd-unit.js'
import type { CommandContext } from '../context.js'

interface ServiceFlags { user?: boolean, start: boolean, name: string, unitDir?: string, passphraseFile?: string, envFile?: string }

/** bin/p2pbak.js, from dist/cli/commands/ (or src/cli/commands/ under tsx). */
const BIN = fileURLToPath(new URL('../../../bin/p2pbak.js', import.meta.url))

function unitDir (io: CliIo, f: ServiceFlags): string {
  if (f.unitDir !== undefined) return resolve(io.cwd ?? '.', f.unitDir)
  if (f.user !== true) return '/etc/systemd/system'
  const config = io.env.XDG_CONFIG_HOME !== undefined && io.env.XDG_CONFIG_HOME.startsWith('/') ? io.env.XDG_CONFIG_HOME : join(io.env.HOME ?? homedir(), '.config')
  return join(config, 'systemd', 'user')
}

function unitName (name: string): string {
  if (!/^[A-Za-z0-9_.@-]+$/.test(name)) throw new InvalidArgumentError(`--name takes letters, digits and _ . @ -, got "${name}"`)
  return name.endsWith('.service') ? name : `${name}.service`
}

/** systemctl on PATH, or undefined. */
function findSystemctl (io: CliIo): string | undefined {
  for (const dir of (io.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, 'systemctl')
    if (dir !== '' && existsSync(p)) return p
  }
  return undefined
}

async function systemctl (bin: string, user: boolean, args: string[]): Promise<void> {
  const argv = [...(user ? ['--user'] : []), ...args]
  await new Promise<void>((resolvePromise, reject) => {
    execFile(bin, argv, { timeout: 60_000 }, (err, _out, stderr) => {
      if (err === null) resolvePromise()
      else reject(new RefusedError(`systemctl ${argv.join(' ')} failed: ${stderr.trim() !== '' ? stderr.trim() : err.message}`, { cause: err }))
    })
  })
}

/** Whether the home's key file is protected by a passphrase (`kdf` is null in a clear key file). */
function encryptedIdentity (home: string): boolean {
  let text: string
  try {
    text = readFileSync(join(home, 'identity.json'), 'utf8')
  } catch (err: unknown) {
    if (errnoCode(err) === 'ENOENT') throw new NoRepositoryError(`no identity in ${home}: run \`p2pbak init\` (or recover) first, then install the service`)
    throw err
  }
  const parsed = JSON.parse(text) as { kdf?: unknown }
  return parsed.kdf !== null
}

/** A passphrase file readable by others defeats its purpose: refused. */
function checkSecretFile (path: string, flag: string): void {
  let st
  try {
    st = statSync(path)
  } catch (err: unknown) {
    throw new NotFoundError(`${flag}: cannot read ${path} (${errnoCode(err) ?? String(err)})`, { cause: err })
  }
  if (!st.isFile()) throw new InvalidArgumentError(`${flag}: ${path} is not a file`)
  if ((st.mode & 0o077) !== 0) throw new InvalidArgumentError(`${flag}: ${path} may be read by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it first`)
}

export function registerService (program: Command, ctx: () => CommandContext): void {
  const service = program.command('service').description('run the daemon as a systemd service: install or uninstall its unit')
  const common = (cmd: Command): Command => cmd
    .option('--user', 'a user service (~/.config/systemd/user, systemctl --user) instead of a system one (/etc/systemd/system)')
    .option('--no-start', 'only write (or remove) the unit file; do not run systemctl')
    .option('--name <name>', 'the unit name', 'p2pbak')
    .option('--unit-dir <dir>', 'write the unit in this directory instead (packaging, tests)')

  common(service.command('install'))
    .description('write a systemd unit for `p2pbak daemon`, then enable and start it')
    .argument('[daemon-args...]', 'arguments for `p2pbak daemon` after --, e.g. -- --listen /ip4/0.0.0.0/tcp/4737')
    .option('--passphrase-file <file>', 'a file (mode 600) holding the passphrase, handed to the daemon as a systemd credential')
    .option('--env-file <file>', 'an environment file (mode 600) with P2PBAK_PASSPHRASE=..., read by systemd')
    .action(async (daemonArgs: string[], f: ServiceFlags) => {
      const c = ctx()
      const cwd = c.io.cwd ?? '.'
      const passphraseFile = f.passphraseFile !== undefined ? resolve(cwd, f.passphraseFile) : undefined
      const envFile = f.envFile !== undefined ? resolve(cwd, f.envFile) : undefined
      if (passphraseFile !== undefined) checkSecretFile(passphraseFile, '--passphrase-file')
      if (envFile !== undefined) checkSecretFile(envFile, '--env-file')
      if (encryptedIdentity(c.homeDir) && passphraseFile === undefined && envFile === undefined) {
        throw new InvalidArgumentError('this identity has a passphrase, and a service has no terminal to ask it on: give --passphrase-file FILE (a file of mode 600 holding it) or --env-file FILE (P2PBAK_PASSPHRASE=...)')
      }
      const dir = unitDir(c.io, f)
      const path = join(dir, unitName(f.name))
      // a system unit runs as the home's owner: the daemon serves no home another user owns
      const owner = f.user === true ? undefined : statSync(c.homeDir, { throwIfNoEntry: false })
      const text = systemdUnit({
        user: f.user === true, node: process.execPath, bin: BIN, home: c.homeDir, daemonArgs,
        ...(owner !== undefined ? { runAs: { uid: owner.uid, gid: owner.gid } } : {}),
        ...(passphraseFile !== undefined ? { passphraseFile } : {}),
        ...(envFile !== undefined ? { environmentFile: envFile } : {})
      })
      mkdirSync(dir, { recursive: true })
      writeFileSync(path, text, { mode: 0o644 })
      const ctl = f.start ? findSystemctl(c.io) : undefined
      const commands = [['daemon-reload'], ['enable', '--now', unitName(f.name)]]
      const shown = commands.map(a => `systemctl${f.user === true ? ' --user' : ''} ${a.join(' ')}`)
      if (!c.json) {
        print(c.io, `wrote ${path}:\n`)
        print(c.io, text)
      }
      if (ctl !== undefined) for (const a of commands) await systemctl(ctl, f.user === true, a)
      if (c.json) {
        printJson(c.io, { unit: path, started: ctl !== undefined, commands: shown })
      } else if (ctl !== undefined) {
        print(c.io, `enabled and started: ${shown.join('; ')}`)
        if (f.user === true) print(c.io, 'to keep it running while you are logged out: loginctl enable-linger')
      } else {
        print(c.io, `${f.start ? 'systemctl was not found; ' : ''}to enable and start it: ${shown.join('; ')}`)
      }
    })

  common(service.command('uninstall'))
    .description('stop and disable the daemon\'s systemd unit, and remove it')
    .action(async (f: ServiceFlags) => {
      const c = ctx()
      const path = join(unitDir(c.io, f), unitName(f.name))
      if (!existsSync(path)) throw new NotFoundError(`there is no unit ${path}`)
      const ctl = f.start ? findSystemctl(c.io) : undefined
      if (ctl !== undefined) await systemctl(ctl, f.user === true, ['disable', '--now', unitName(f.name)])
      rmSync(path)
      if (ctl !== undefined) await systemctl(ctl, f.user === true, ['daemon-reload'])
      if (c.json) printJson(c.io, { removed: path, stopped: ctl !== undefined })
      else {
        print(c.io, `removed ${path}`)
        if (ctl === undefined) printErr(c.io, `${f.start ? 'systemctl was not found; ' : ''}if the service still runs: systemctl${f.user === true ? ' --user' : ''} disable --now ${unitName(f.name)}`)
      }
    })
}
