/**
 * `init` and `recover`: create an identity, or rebuild it from the recovery phrase; `init --write-only`
 * and `export-write-only-key`: set up a machine that backs up but cannot read or delete backups
 * (docs/format/keys.md §11).
 */
import { readFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import type { Command } from 'commander'
import { AlreadyExistsError, InvalidArgumentError } from '../../errors.js'
import { pathExists } from '../../store/atomic.js'
import type { WriteOnlyKey, WriteOnlyKeyFile } from '../../peers/index.js'
import { print, printJson } from '../io.js'
import { newPassphrase, readPassphrase } from '../passphrase.js'
import { newKeyKdf, type CommandContext } from '../context.js'

export function registerInit (program: Command, ctx: () => CommandContext): void {
  program.command('init')
    .description('create a new identity and local store; prints the recovery phrase once')
    .option('--insecure-no-passphrase', 'store the seed without a passphrase (protected only by file permissions); needed to do so without a terminal')
    .option('--write-only', 'set up a write-only machine of an existing user: it backs up, but cannot read, list, restore, forget or delete any backup')
    .option('--from-key-file <file>', 'with --write-only: the file `p2pbak export-write-only-key` wrote on a full machine (recommended)')
    .option('--from-phrase-file <file>', 'with --write-only: derive the write-only key from the 24-word phrase, keeping no secret key (the phrase passes through this machine)')
    .option('--name <name>', 'with --write-only --from-phrase-file: the name of this machine in the group (default: the host name)')
    .action(async (opts: { insecureNoPassphrase?: boolean, writeOnly?: boolean, fromKeyFile?: string, fromPhraseFile?: string, name?: string }) => {
      const c = ctx()
      if (opts.writeOnly === true || opts.fromKeyFile !== undefined || opts.fromPhraseFile !== undefined) {
        await initWriteOnly(c, opts)
        return
      }
      const kdf = newKeyKdf(c.io)
      const passphrase = await newPassphrase(c.io, { insecureNoPassphrase: opts.insecureNoPassphrase === true })
      const { Home } = await import('../../node/home.js')
      const { phrase, identity } = await Home.init({ ...c.homeOptions(), ...kdf, passphrase })
      if (c.json) {
        printJson(c.io, { recoveryPhrase: phrase, userId: identity.userId, peerId: null, home: c.homeDir, encrypted: passphrase !== null })
        return
      }
      print(c.io, `created a p2pbak identity in ${c.homeDir}`)
      print(c.io, `user id: ${identity.userId}`)
      if (passphrase === null) print(c.io, 'warning: no passphrase set; the key file is protected only by file permissions (anyone who copies it has your backups)')
      print(c.io, '\nYour recovery phrase (write it down; it is shown only this once and is all you need to restore on a new machine):\n')
      print(c.io, `  ${phrase}\n`)
    })

  program.command('export-write-only-key')
    .description('write the key file of a new write-only machine (it backs up into your group, cannot read or delete backups); then run `p2pbak init --write-only --from-key-file FILE` there')
    .requiredOption('--out <file>', 'where to write it (move it to the new machine, then delete it)')
    .option('--name <name>', 'the new machine\'s name in the group', 'write-only')
    .option('--insecure-no-passphrase', 'store the key file without a passphrase (needed for a daemon that starts unattended, unless P2PBAK_PASSPHRASE_FILE is set there)')
    .action(async (opts: { out: string, name: string, insecureNoPassphrase?: boolean }) => {
      const c = ctx()
      if (await pathExists(opts.out)) throw new AlreadyExistsError(`${opts.out} exists; choose another --out`)
      // only the key is needed: no node is started (a running daemon keeps its own)
      const [{ Home }, { createWriteOnlyKey }, { writeFileAtomic }] = await Promise.all([import('../../node/home.js'), import('../../peers/index.js'), import('../../store/index.js')])
      const home = await Home.open(c.homeOptions())
      let peerId: string
      try {
        home.requireFullKey('make keys for another machine')
        const kdf = newKeyKdf(c.io)
        const passphrase = await newPassphrase(c.io, { insecureNoPassphrase: opts.insecureNoPassphrase === true })
        const { file, key } = createWriteOnlyKey(home.sodium, home.identity, opts.name, Date.now(), passphrase, kdf.kdf)
        await writeFileAtomic(opts.out, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 })
        peerId = key.deviceCert.peerId
      } finally {
        await home.close()
      }
      if (c.json) { printJson(c.io, { file: opts.out, peerId, userId: home.identity.userId, name: opts.name }); return }
      print(c.io, `wrote the write-only key of "${opts.name}" (device ${peerId}) to ${opts.out}`)
      print(c.io, 'It holds no secret key of yours: with it a machine can back up into your group, but not read, restore, list, forget or delete anything.')
      print(c.io, 'On the new machine: p2pbak init --write-only --from-key-file FILE, then p2pbak join CODE (from `p2pbak group invite` here); then delete FILE.')
    })

  program.command('recover')
    .description('rebuild your identity from the recovery phrase (on a new machine)')
    .requiredOption('--phrase-file <file>', 'file holding the 24-word recovery phrase')
    .option('--insecure-no-passphrase', 'store the seed without a passphrase (protected only by file permissions); needed to do so without a terminal')
    .action(async (opts: { phraseFile: string, insecureNoPassphrase?: boolean }) => {
      const c = ctx()
      const kdf = newKeyKdf(c.io)
      const [{ phraseToSeed }, { Home }] = await Promise.all([import('../../crypto/phrase.js'), import('../../node/home.js')])
      const seed = phraseToSeed(await readFile(opts.phraseFile, 'utf8'))
      const passphrase = await newPassphrase(c.io, { insecureNoPassphrase: opts.insecureNoPassphrase === true })
      const { identity } = await Home.init({ ...c.homeOptions(), ...kdf, passphrase, seed })
      // opened with the passphrase just given: asking a third time could fail on a typo after the identity is written
      const { openSession } = await import('../../node/session.js')
      const home = (await openSession({ ...c.homeOptions(), passphrase: async () => passphrase })).home
      try {
        const rebuilt = await home.syncIndex()
        if (c.json) {
          printJson(c.io, { userId: identity.userId, peerId: null, home: c.homeDir, packsIndexed: rebuilt.packsAdded })
        } else {
          print(c.io, `recovered identity ${identity.userId} in ${c.homeDir}`)
          if (rebuilt.packsAdded > 0) print(c.io, `indexed ${rebuilt.packsAdded} packs found in the store`)
          print(c.io, `check that this user id is the one your other machines show (\`p2pbak status\`): a mistyped phrase makes another identity. Then delete ${opts.phraseFile}: the phrase opens every backup`)
        }
      } finally {
        await home.close()
      }
    })
}

/** `init --write-only`: from an exported key file (as is), or from the phrase (whose secrets are dropped here). */
async function initWriteOnly (c: CommandContext, opts: { insecureNoPassphrase?: boolean, writeOnly?: boolean, fromKeyFile?: string, fromPhraseFile?: string, name?: string }): Promise<void> {
  if (opts.writeOnly !== true) throw new InvalidArgumentError('--from-key-file and --from-phrase-file belong with --write-only')
  if ((opts.fromKeyFile === undefined) === (opts.fromPhraseFile === undefined)) throw new InvalidArgumentError('init --write-only needs one of --from-key-file FILE (written by `p2pbak export-write-only-key` on a full machine) and --from-phrase-file FILE')
  const [{ deriveIdentity, loadBackend }, { Home }, { createWriteOnlyKey, openWriteOnlyKey, parseWriteOnlyKey }] =
    await Promise.all([import('../../crypto/index.js'), import('../../node/home.js'), import('../../peers/index.js')])
  const sodium = await loadBackend(c.homeOptions().backend)
  let made: { file: WriteOnlyKeyFile, key: WriteOnlyKey }
  if (opts.fromKeyFile !== undefined) {
    const file = parseWriteOnlyKey(await readFile(opts.fromKeyFile, 'utf8'))
    // opened once here to check it (passphrase, certificate, device key) before the home is made
    const key = openWriteOnlyKey(sodium, file, file.kdf === null ? null : await readPassphrase(c.io))
    made = { file, key }
  } else {
    const { phraseToSeed } = await import('../../crypto/phrase.js')
    const full = deriveIdentity(sodium, phraseToSeed(await readFile(opts.fromPhraseFile as string, 'utf8')))
    const kdf = newKeyKdf(c.io)
    const passphrase = await newPassphrase(c.io, { insecureNoPassphrase: opts.insecureNoPassphrase === true })
    made = createWriteOnlyKey(sodium, full, opts.name ?? hostname(), Date.now(), passphrase, kdf.kdf)
  }
  await Home.initWriteOnly({ home: c.homeDir, ...made })
  const { key } = made
  if (c.json) {
    printJson(c.io, { userId: key.identity.userId, peerId: key.deviceCert.peerId, home: c.homeDir, writeOnly: true, encrypted: made.file.kdf !== null })
    return
  }
  print(c.io, `set up a write-only machine of user ${key.identity.userId} in ${c.homeDir}`)
  print(c.io, `device: ${key.deviceCert.peerId} ("${key.deviceCert.name}")`)
  print(c.io, 'It can back up into your group; it cannot read, restore, list, forget or delete any backup.')
  if (opts.fromPhraseFile !== undefined) print(c.io, `Delete ${opts.fromPhraseFile} now: the phrase is all anyone needs to read and delete your backups.`)
  print(c.io, 'Next: p2pbak join CODE (an invite from any member, `p2pbak group invite`), then p2pbak backup PATH or p2pbak publish PATH --every 1d.')
}
