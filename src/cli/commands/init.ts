/** `init` and `recover`: create an identity, or rebuild it from the recovery phrase. */
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { print, printJson } from '../io.js'
import { newPassphrase } from '../passphrase.js'
import { newKeyKdf, type CommandContext } from '../context.js'

export function registerInit (program: Command, ctx: () => CommandContext): void {
  program.command('init')
    .description('create a new identity and local store; prints the recovery phrase once')
    .option('--insecure-no-passphrase', 'store the seed without a passphrase (protected only by file permissions); needed to do so without a terminal')
    .action(async (opts: { insecureNoPassphrase?: boolean }) => {
      const c = ctx()
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

  program.command('recover')
    .description('rebuild your identity from the recovery phrase (on a new machine)')
    .requiredOption('--phrase-file <file>', 'file holding the 24-word recovery phrase')
    .option('--insecure-no-passphrase', 'store the seed without a passphrase (protected only by file permissions); needed to do so without a terminal')
    .action(async (opts: { phraseFile: string, insecureNoPassphrase?: boolean }) => {
      const c = ctx()
      const kdf = newKeyKdf(c.io)
      const [{ phraseToSeed }, { Home }] = await Promise.all([import('../../crypto/index.js'), import('../../node/home.js')])
      const seed = phraseToSeed(await readFile(opts.phraseFile, 'utf8'))
      const passphrase = await newPassphrase(c.io, { insecureNoPassphrase: opts.insecureNoPassphrase === true })
      const { identity } = await Home.init({ ...c.homeOptions(), ...kdf, passphrase, seed })
      const home = await c.openHome()
      try {
        const rebuilt = await home.syncIndex()
        if (c.json) {
          printJson(c.io, { userId: identity.userId, peerId: null, home: c.homeDir, packsIndexed: rebuilt.packsAdded })
        } else {
          print(c.io, `recovered identity ${identity.userId} in ${c.homeDir}`)
          if (rebuilt.packsAdded > 0) print(c.io, `indexed ${rebuilt.packsAdded} packs found in the store`)
        }
      } finally {
        await home.close()
      }
    })
}
