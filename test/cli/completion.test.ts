// `coffer completion bash|zsh|fish`: the scripts are generated from the command table, so what
// they offer is what `coffer --help` lists; bash is exercised for real (its completion function
// run as bash runs it on <Tab>).
import { spawnSync } from 'node:child_process'
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { COMMANDS } from '../../src/cli/command-table.js'
import { BIN, ensureBuilt } from '../helpers/child-server.js'

const coffer = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })

/** What bash offers for `words` (the last being the word under the cursor), through the script. */
function complete(script: string, words: string[]): string[] {
  const quoted = words.map((w) => `'${w}'`).join(' ')
  const r = spawnSync(
    'bash',
    ['--norc', '-c', `${script}\nCOMP_WORDS=(coffer ${quoted}); COMP_CWORD=${words.length}; _coffer; printf '%s\\n' "\${COMPREPLY[@]}"`],
    {
      encoding: 'utf8',
    },
  )
  assert.equal(r.status, 0, r.stderr)
  return r.stdout.split('\n').filter(Boolean)
}

const groups = COMMANDS.flatMap((e) => ('group' in e ? [e.group] : []))
const topCommands = COMMANDS.flatMap((e) => ('name' in e && !e.name.includes(' ') ? [e.name] : []))
const subcommands = (group: string) =>
  COMMANDS.flatMap((e) => ('name' in e && e.name.startsWith(`${group} `) ? [e.name.split(' ')[1]!] : []))

describe('coffer completion', () => {
  ensureBuilt()
  const bash = coffer(['completion', 'bash'])

  test('bash offers every command and group of the table, and each group its own subcommands', () => {
    assert.equal(bash.status, 0, bash.stderr)
    const top = complete(bash.stdout, [''])
    for (const name of [...groups, ...topCommands]) assert.ok(top.includes(name), `${name} offered at the top`)
    assert.deepEqual(complete(bash.stdout, ['sec']), ['secrets'])
    for (const g of groups) assert.deepEqual(complete(bash.stdout, [g, '']).sort(), subcommands(g).sort(), `${g}'s subcommands`)
    assert.deepEqual(complete(bash.stdout, ['projects', 'de']), ['delete'])
  })

  test('bash offers each command’s options, the shared scope flags included', () => {
    assert.deepEqual(complete(bash.stdout, ['secrets', 'set', '--c']), ['--comment'])
    assert.ok(complete(bash.stdout, ['secrets', 'list', '--']).includes('--reveal'))
    assert.ok(complete(bash.stdout, ['envs', 'delete', '--']).includes('--yes'))
    assert.deepEqual(complete(bash.stdout, ['login', '--ex']), ['--export'])
    assert.ok(complete(bash.stdout, ['audit', 'log', '--']).includes('--since'))
  })

  test('zsh and fish scripts name every group; an unknown shell is a usage error', () => {
    const zsh = coffer(['completion', 'zsh'])
    assert.equal(zsh.status, 0)
    assert.match(zsh.stdout, /^#compdef coffer\n/)
    const fish = coffer(['completion', 'fish'])
    assert.equal(fish.status, 0)
    for (const g of groups) {
      assert.ok(zsh.stdout.includes(`'${g}:`), `zsh offers ${g}`)
      assert.ok(fish.stdout.includes(` -a ${g} `), `fish offers ${g}`)
    }
    const bad = coffer(['completion', 'tcsh'])
    assert.equal(bad.status, 2)
    assert.equal(bad.stderr, 'coffer: Unknown shell tcsh: coffer completion bash, zsh or fish. (ERR_USAGE)\n')
  })
})
