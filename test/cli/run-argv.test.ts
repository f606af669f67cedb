// `coffer run` reads its arguments without commander (src/cli/run-argv.ts) on its fast path:
// whatever that reading accepts, commander — with the real command table — must read the same
// way, or the two paths of one command line would run different things.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { CommanderError } from 'commander'
import fc from 'fast-check'
import type { CommandSpec } from '../../src/cli/command-spec.js'
import { COMMANDS } from '../../src/cli/command-table.js'
import { buildProgram } from '../../src/cli/program.js'
import { parseRunArgs } from '../../src/cli/run-argv.js'

type Reading = { command: string[]; opts: Record<string, unknown> } | 'refused'

/** What the full CLI's commander program makes of `coffer run ...args` (the action is not run). */
async function commanderReads(args: string[]): Promise<Reading> {
  let seen: Reading | undefined
  const table = COMMANDS.map((e) =>
    'name' in e && e.name === 'run'
      ? ({
          ...e,
          run: async (command: string[], opts: Record<string, unknown>) => {
            seen = { command, opts: { ...opts } }
          },
        } satisfies CommandSpec)
      : e,
  )
  const program = buildProgram(table)
  const silent = { writeOut: () => {}, writeErr: () => {} }
  program.configureOutput(silent)
  for (const c of program.commands) c.configureOutput(silent)
  try {
    await program.parseAsync(['node', 'coffer', 'run', ...args])
  } catch (err) {
    if (err instanceof CommanderError) return 'refused'
    throw err
  }
  assert.ok(seen, `commander ran no action for run ${JSON.stringify(args)}`)
  return seen
}

async function assertSameReading(args: string[]): Promise<void> {
  const fast = parseRunArgs(args)
  if (fast === null) return
  assert.deepEqual(await commanderReads(args), { command: fast.command, opts: { ...fast.opts } }, `run ${JSON.stringify(args)}`)
}

describe('coffer run: arguments read without commander', () => {
  test('the usual command lines are read on the fast path, as commander reads them', async () => {
    const lines = [
      ['--', 'true'],
      ['true'],
      ['--project', 'web', '--env', 'production', '--', 'node', 'server.js', '--port', '8080'],
      ['--workspace', 'acme', '--project', 'web', '--env', 'dev', '--', 'true'],
      ['--url', 'https://vault.example.com', '--project=web', '--env=staging', '--preserve-env', '--', 'sh', '-c', 'echo "$X"'],
      ['--url=http://127.0.0.1:8700/', '--', 'env'],
      ['--preserve-env', 'npm', 'start', '--', '--inspect'],
      ['--env', 'qa', 'sh', '-c', 'exit 3'],
      ['--project', 'a', '--project', 'b', '--', 'true'],
      ['--project', '', '--', 'true'],
      ['--project', '-', '--', 'true'],
      ['--env=a=b', '--', 'x=y'],
      ['--', '--help'],
      ['--', '--'],
      ['-', 'x'],
      ['--env', 'dev', '--env', 'dev-local', '--', 'true'],
      ['--project', 'a', '--env', 'x', '--env', 'b/y', '--', 'true'],
      ['--watch', '--watch-signal', 'SIGHUP', '--watch-debounce=50', '--', 'node', 'server.js'],
      ['--mount', './.env.run', '--format', 'json', '--', 'true'],
      ['--fallback', '--fallback-max-age', '24h', '--', 'true'],
      ['--fallback=/tmp/snap', '--fallback-only', '--pass-token', 'true'],
      ['--fallback', 'snap.bin', 'true'],
      ['--fallback', '-', 'true'],
    ]
    for (const args of lines) {
      assert.ok(parseRunArgs(args), `read on the fast path: run ${JSON.stringify(args)}`)
      await assertSameReading(args)
    }
    assert.deepEqual(parseRunArgs(['--project', 'web', '--env', 'production', '--preserve-env', '--', 'node', '-e', '0']), {
      command: ['node', '-e', '0'],
      opts: { project: 'web', env: ['production'], preserveEnv: true },
    })
    assert.deepEqual(parseRunArgs(['--env', 'dev', '--env=web/dev-local', '--fallback', '--', 'true']), {
      command: ['true'],
      opts: { env: ['dev', 'web/dev-local'], fallback: true },
    })
    // An optional value: the next argument is PATH unless it looks like an option (as commander reads it).
    assert.deepEqual(parseRunArgs(['--fallback', 'snap.bin', 'node', 'x.js'])?.opts, { fallback: 'snap.bin' })
  })

  test('help, unknown options, missing values and a missing command go to commander', () => {
    for (const args of [
      [],
      ['--'],
      ['--help'],
      ['-h'],
      ['--project', 'web', '--help', '--', 'true'],
      ['--json', '--', 'true'],
      ['--no-preserve-env', '--', 'true'],
      ['--preserve-env=yes', '--', 'true'],
      ['--proj', 'web', '--', 'true'],
      ['--project'],
      ['--project', '--env', 'x', '--', 'true'],
      ['-1', 'x'],
      ['--env', 'dev'],
    ])
      assert.equal(parseRunArgs(args), null, `run ${JSON.stringify(args)}`)
  })

  test('any command line the fast path reads, commander reads the same way', async () => {
    const token = fc.oneof(
      fc.constantFrom(
        '--',
        '-',
        '--url',
        '--workspace',
        '--project',
        '--env',
        '--preserve-env',
        '--watch',
        '--watch-signal',
        '--watch-debounce',
        '--mount',
        '--format',
        '--fallback',
        '--fallback=x',
        '--fallback-only',
        '--fallback-max-age',
        '--pass-token',
        '--watch=1',
        '--json',
        '--help',
        '-h',
        '-V',
        '--version',
        '--url=',
        '--env=x',
        '--env=a=b',
        '--preserve-env=1',
        '--no-preserve-env',
        '--=x',
        '-1',
        '-e',
        'true',
        'help',
        'run',
        '',
        'a=b',
      ),
      fc.string({ maxLength: 6 }),
      fc.string({ maxLength: 6 }).map((s) => `-${s}`),
      fc.string({ maxLength: 6 }).map((s) => `--${s}`),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(token, { maxLength: 8 }), async (args) => {
        await assertSameReading(args)
      }),
      { numRuns: 1500 },
    )
  })
})
