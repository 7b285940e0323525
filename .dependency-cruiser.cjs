/**
 * The direction of imports between layers (docs/architecture.md). A module may import only its own
 * rank or lower ones:
 *   0 util/, errors.ts, ids.ts
 *   1 format/, crypto/, chunking/, erasure/
 *   2 store/, peers/, placement/
 *   3 repo/, protocols/
 *   4 backup/, repair/
 *   5 node/
 *   6 cli/
 * plus capability rules: only crypto/ imports libsodium or BLAKE3; only cli/ (and bin/) may use
 * process-wide state; no cycles.
 */
const layer = (dirs) => `^src/(${dirs.join('|')})`
const RANKS = [
  ['util/', 'errors\\.ts', 'ids\\.ts'],
  ['format/', 'crypto/', 'chunking/', 'erasure/'],
  ['store/', 'peers/', 'placement/'],
  ['repo/', 'protocols/'],
  ['backup/', 'repair/'],
  ['node/'],
  ['cli/']
]
const forbidden = []
RANKS.forEach((dirs, rank) => {
  const higher = RANKS.slice(rank + 1).flat()
  if (higher.length === 0) return
  forbidden.push({
    name: `rank-${rank}-imports-higher`,
    comment: `${dirs.join(', ')} (rank ${rank}) must not import a higher layer`,
    severity: 'error',
    from: { path: layer(dirs) },
    to: { path: layer(higher) }
  })
})

module.exports = {
  forbidden: [
    ...forbidden,
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'cycles make layers meaningless',
      from: {},
      to: { circular: true, viaOnly: { pathNot: '^src/cli/' } }
    },
    {
      name: 'only-crypto-imports-libsodium',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/crypto/' },
      to: { path: 'node_modules/(sodium-native|libsodium-wrappers[^/]*|@napi-rs/blake-hash)/' }
    },
    {
      name: 'placement-is-pure',
      severity: 'error',
      from: { path: '^src/placement/' },
      to: { path: '^src/peers/|^node:fs|^fs$' }
    },
    {
      name: 'low-layers-do-no-io',
      comment: 'format, crypto, chunking and util are pure: no file system',
      severity: 'error',
      from: { path: layer(['util/', 'format/', 'crypto/', 'chunking/', 'erasure/']) },
      to: { path: '^(node:)?fs(/promises)?$', dependencyTypes: ['core'] }
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js', '.d.ts'] },
    moduleSystems: ['es6'],
    reporterOptions: { text: { highlightFocused: true } }
  }
}
