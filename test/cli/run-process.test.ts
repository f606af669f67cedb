import { test, describe, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { constants as osConstants, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  CommandNotExecutableError,
  CommandNotFoundError,
  FORWARDED_SIGNALS,
  SecretEnvironmentError,
  buildChildEnv,
  runWithSecrets,
} from '../../src/cli/run-process.js'

// Values are fake; comparisons use assert.ok with key-only messages so that a
// failure never prints a value.

const dir = mkdtempSync(join(tmpdir(), 'coffer-run-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const baseEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' }

/** Run sh in the child, have it write $name to a file, and return the file's content (or null if unset). */
async function childSees(
  name: string,
  secrets: Record<string, string>,
  opts: { preserveEnv: boolean; env?: NodeJS.ProcessEnv },
): Promise<string | null> {
  const out = join(dir, `env-${name}-${Math.random().toString(36).slice(2)}`)
  const code = await runWithSecrets(
    'sh',
    ['-c', `if [ -n "\${${name}+set}" ]; then printf %s "$${name}" > "$1"; else exit 9; fi`, 'sh', out],
    secrets,
    opts,
  )
  if (code === 9) return null
  assert.equal(code, 0)
  return readFileSync(out, 'utf8')
}

function listenerCounts(): number[] {
  return FORWARDED_SIGNALS.map((s) => process.listenerCount(s))
}

describe('exit codes', () => {
  test('propagates the exit code', async () => {
    for (const n of [0, 1, 7, 42, 255]) {
      assert.equal(await runWithSecrets('sh', ['-c', `exit ${n}`], {}, { preserveEnv: false, env: baseEnv }), n)
    }
  })

  test('arguments are passed verbatim without a shell', async () => {
    const out = join(dir, 'args')
    const weird = ['$(echo no)', '*', 'a b', "'", '']
    const code = await runWithSecrets('sh', ['-c', 'printf "%s|" "$@" > "$0"', out, ...weird], {}, { preserveEnv: false, env: baseEnv })
    assert.equal(code, 0)
    assert.equal(readFileSync(out, 'utf8'), weird.map((w) => `${w}|`).join(''))
  })

  test('a child killed by a signal yields 128 + signal number', async () => {
    const term = await runWithSecrets('sh', ['-c', 'kill -TERM $$'], {}, { preserveEnv: false, env: baseEnv })
    assert.equal(term, 128 + osConstants.signals.SIGTERM)
    const kill = await runWithSecrets('sh', ['-c', 'kill -KILL $$'], {}, { preserveEnv: false, env: baseEnv })
    assert.equal(kill, 137)
  })

  test('signal listeners are removed after the child exits', async () => {
    const before = listenerCounts()
    const running = runWithSecrets('sh', ['-c', 'exit 3'], {}, { preserveEnv: false, env: baseEnv })
    assert.deepEqual(
      listenerCounts(),
      before.map((n) => n + 1),
      'listeners installed while running',
    )
    assert.equal(await running, 3)
    assert.deepEqual(listenerCounts(), before)
  })
})

describe('command errors', () => {
  test('a missing command rejects with CommandNotFoundError (127)', async () => {
    const before = listenerCounts()
    const cmd = 'coffer-definitely-not-a-command-xyz'
    await assert.rejects(runWithSecrets(cmd, ['a'], { FAKE_SECRET: 'fake-secret-value' }, { preserveEnv: false, env: baseEnv }), (err) => {
      assert.ok(err instanceof CommandNotFoundError)
      assert.equal(err.code, 'ERR_COMMAND_NOT_FOUND')
      assert.equal(err.exitCode, 127)
      assert.match(err.message, /coffer-definitely-not-a-command-xyz/)
      assert.ok(!String(err.stack).includes('fake-secret-value'), 'error leaks a secret')
      return true
    })
    assert.deepEqual(listenerCounts(), before)
  })

  test('a missing command by path also gives 127', async () => {
    await assert.rejects(
      runWithSecrets(join(dir, 'nope', 'bin'), [], {}, { preserveEnv: false, env: baseEnv }),
      (err) => err instanceof CommandNotFoundError && err.exitCode === 127,
    )
  })

  test('a non-executable file rejects with CommandNotExecutableError (126)', async () => {
    const file = join(dir, 'not-executable.sh')
    writeFileSync(file, '#!/bin/sh\nexit 0\n')
    chmodSync(file, 0o644)
    await assert.rejects(runWithSecrets(file, [], {}, { preserveEnv: false, env: baseEnv }), (err) => {
      assert.ok(err instanceof CommandNotExecutableError)
      assert.equal(err.exitCode, 126)
      assert.equal(err.code, 'ERR_COMMAND_NOT_EXECUTABLE')
      return true
    })
  })

  test('a NUL in a secret value is rejected before spawning, without leaking it', async () => {
    const before = listenerCounts()
    await assert.rejects(
      runWithSecrets('sh', ['-c', 'exit 0'], { NUL_KEY: 'fake\0value-xyz' }, { preserveEnv: false, env: baseEnv }),
      (err) => {
        assert.ok(err instanceof SecretEnvironmentError)
        assert.equal(err.code, 'ERR_SECRET_ENV')
        assert.match(err.message, /NUL_KEY/)
        assert.ok(!err.message.includes('value-xyz'), 'error leaks a secret')
        return true
      },
    )
    await assert.rejects(
      runWithSecrets('sh', ['-c', 'exit 0'], { 'A=B': 'fake' }, { preserveEnv: false, env: baseEnv }),
      SecretEnvironmentError,
    )
    assert.deepEqual(listenerCounts(), before)
  })
})

describe('environment', () => {
  test('secrets are injected', async () => {
    const value = 'fake-injected \n"quoted" $HOME \'single\' ✓'
    const seen = await childSees('COFFER_TEST_SECRET', { COFFER_TEST_SECRET: value }, { preserveEnv: false, env: baseEnv })
    assert.ok(seen === value, 'value mismatch for key COFFER_TEST_SECRET')
  })

  test('inherited variables are passed through', async () => {
    const seen = await childSees(
      'COFFER_TEST_INHERITED',
      {},
      { preserveEnv: false, env: { ...baseEnv, COFFER_TEST_INHERITED: 'fake-inherited' } },
    )
    assert.ok(seen === 'fake-inherited', 'value mismatch for key COFFER_TEST_INHERITED')
  })

  test('secrets override inherited variables by default', async () => {
    const seen = await childSees(
      'COFFER_TEST_BOTH',
      { COFFER_TEST_BOTH: 'fake-from-secret' },
      {
        preserveEnv: false,
        env: { ...baseEnv, COFFER_TEST_BOTH: 'fake-from-env' },
      },
    )
    assert.ok(seen === 'fake-from-secret', 'value mismatch for key COFFER_TEST_BOTH')
  })

  test('preserveEnv lets inherited variables win, secrets still fill the gaps', async () => {
    const env = { ...baseEnv, COFFER_TEST_BOTH: 'fake-from-env' }
    const secrets = { COFFER_TEST_BOTH: 'fake-from-secret', COFFER_TEST_ONLY_SECRET: 'fake-only' }
    const both = await childSees('COFFER_TEST_BOTH', secrets, { preserveEnv: true, env })
    assert.ok(both === 'fake-from-env', 'value mismatch for key COFFER_TEST_BOTH')
    const only = await childSees('COFFER_TEST_ONLY_SECRET', secrets, { preserveEnv: true, env })
    assert.ok(only === 'fake-only', 'value mismatch for key COFFER_TEST_ONLY_SECRET')
  })

  test('an empty inherited variable still counts as set under preserveEnv', async () => {
    const seen = await childSees(
      'COFFER_TEST_EMPTY',
      { COFFER_TEST_EMPTY: 'fake-secret' },
      {
        preserveEnv: true,
        env: { ...baseEnv, COFFER_TEST_EMPTY: '' },
      },
    )
    assert.ok(seen === '', 'value mismatch for key COFFER_TEST_EMPTY')
  })

  test('opts.env replaces process.env entirely; without it process.env is inherited', async () => {
    process.env.COFFER_TEST_PROCESS_ENV = 'fake-process-env'
    try {
      assert.equal(await childSees('COFFER_TEST_PROCESS_ENV', {}, { preserveEnv: false, env: baseEnv }), null)
      const seen = await childSees('COFFER_TEST_PROCESS_ENV', {}, { preserveEnv: false })
      assert.ok(seen === 'fake-process-env', 'value mismatch for key COFFER_TEST_PROCESS_ENV')
    } finally {
      delete process.env.COFFER_TEST_PROCESS_ENV
    }
  })

  test('buildChildEnv does not mutate its inputs and drops undefined entries', () => {
    const env: NodeJS.ProcessEnv = { A: 'fake-a', B: undefined }
    const secrets = { A: 'fake-s', C: 'fake-c' }
    const merged = buildChildEnv(secrets, { preserveEnv: false, env })
    assert.deepEqual(Object.keys(merged).sort(), ['A', 'C'])
    assert.ok(merged.A === 'fake-s' && merged.C === 'fake-c', 'merge mismatch')
    assert.ok(env.A === 'fake-a' && !('C' in env), 'inherited env mutated')
    assert.ok(secrets.A === 'fake-s' && Object.keys(secrets).length === 2, 'secrets mutated')
  })
})

describe('signal forwarding', () => {
  const runProcessUrl = new URL('../../src/cli/run-process.ts', import.meta.url).href

  /**
   * Start a wrapper node process (under tsx) that calls runWithSecrets on a
   * sh child which traps `signal` and exits with `trapCode`; send `signal` to
   * the wrapper once the child is ready; return the wrapper's exit status.
   */
  async function forwardThroughWrapper(
    signal: NodeJS.Signals,
    trapCode: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; sawSecret: boolean; inspectorOpened: boolean }> {
    const short = signal.replace(/^SIG/, '')
    const shCommand =
      `trap 'kill $! 2>/dev/null; exit ${trapCode}' ${short}; ` +
      '[ "$FAKE_RUN_SECRET" = fake-run-value ] && echo saw-secret; sleep 10 </dev/null >/dev/null 2>&1 & echo ready; wait'
    const script = `
      import { runWithSecrets } from ${JSON.stringify(runProcessUrl)};
      const code = await runWithSecrets('sh', ['-c', ${JSON.stringify(shCommand)}],
        { FAKE_RUN_SECRET: 'fake-run-value' }, { preserveEnv: false });
      process.exit(code);
    `
    const wrapper = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    wrapper.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      wrapper.once('exit', (code, sig) => resolve({ code, signal: sig })),
    )
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`wrapper not ready in time; stderr: ${stderr}`)), 20_000)
      wrapper.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d
        if (stdout.includes('ready')) {
          clearTimeout(timer)
          resolve()
        }
      })
      void exited.then(() => {
        clearTimeout(timer)
        reject(new Error(`wrapper exited early; stderr: ${stderr}`))
      })
    })
    const killTimer = setTimeout(() => wrapper.kill('SIGKILL'), 20_000)
    wrapper.kill(signal)
    const result = await exited
    clearTimeout(killTimer)
    return { ...result, sawSecret: stdout.includes('saw-secret'), inspectorOpened: stderr.includes('Debugger listening') }
  }

  const cases: Array<[NodeJS.Signals, number]> = [
    ['SIGTERM', 42],
    ['SIGINT', 43],
    ['SIGHUP', 44],
    ['SIGQUIT', 45],
    ['SIGUSR1', 46],
    ['SIGUSR2', 47],
  ]
  for (const [signal, trapCode] of cases) {
    test(`${signal} sent to the parent reaches the child (trap exits ${trapCode})`, { timeout: 60_000 }, async () => {
      const result = await forwardThroughWrapper(signal, trapCode)
      assert.equal(result.signal, null, `wrapper was killed by ${result.signal ?? ''} instead of forwarding`)
      assert.equal(result.code, trapCode)
      assert.ok(result.sawSecret, 'child did not see the injected secret')
      assert.equal(result.inspectorOpened, false, 'the signal reached Node itself (inspector opened) instead of the child')
    })
  }

  test('covers exactly the documented signals', () => {
    assert.deepEqual([...FORWARDED_SIGNALS].sort(), cases.map(([s]) => s).sort())
  })
})
