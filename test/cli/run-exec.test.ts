// `coffer run` putting the command in its own place (src/cli/run-exec.ts, the native/exec
// addon): what the command inherits must be what a child started by libuv would get, and a
// failed exec must leave coffer exactly as it was. Each case runs in a Node process of its own
// (the exec replaces it), which reports on itself before and after.
import { spawn } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { canExec, commandPath } from '../../src/cli/run-exec.js'

const ROOT = join(import.meta.dirname, '..', '..')
const RUN_EXEC = new URL('../../src/cli/run-exec.ts', import.meta.url).href
const dir = mkdtempSync(join(tmpdir(), 'coffer-run-exec-'))
after(() => rmSync(dir, { recursive: true, force: true }))

// What Node.js does to its own process that a command must not inherit, read from /proc: the
// ignored signals (SIGPIPE, bit 13), close-on-exec on stdio (fdinfo flags 02000000) and, once
// process.stdin is opened on a pipe, O_NONBLOCK on it (04000).
const SIGPIPE_BIT = 1n << 12n
const O_NONBLOCK = 0o4000
const O_CLOEXEC = 0o2000000
const SELF_REPORT = `
  const { readFileSync } = await import('node:fs');
  const self = () => {
    const status = readFileSync('/proc/self/status', 'utf8');
    const hex = (name) => BigInt('0x' + new RegExp('^' + name + ':\\\\s*([0-9a-f]+)', 'm').exec(status)[1]);
    const flags = (fd) => Number.parseInt(/^flags:\\s*([0-7]+)/m.exec(readFileSync('/proc/self/fdinfo/' + fd, 'utf8'))[1], 8);
    return { pid: process.pid, sigIgn: String(hex('SigIgn')), sigBlk: String(hex('SigBlk')), stdin: flags(0), stdout: flags(1) };
  };
`

interface Outcome {
  code: number | null
  lines: string[]
  stderr: string
}

/** Runs `body` (an ES module using execInPlace and self()) in a Node process of its own, `input` on its stdin. */
function wrapper(body: string, input: string): Promise<Outcome> {
  const script = `import { execInPlace } from ${JSON.stringify(RUN_EXEC)};\n${SELF_REPORT}\n${body}`
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', COFFER_TOKEN: 'fake-token-not-for-the-command' },
  })
  let out = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  child.stdin.end(input)
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, lines: out.split('\n').filter(Boolean), stderr: `pid ${child.pid}\n${stderr}` })
    }),
  )
}

describe('coffer run in place of itself (execve)', () => {
  test('the addon is built here: on Linux, coffer run always takes this path', () => {
    assert.equal(canExec(), true, 'coffer-exec is missing: npm install builds native/exec with node-gyp')
  })

  test('the command keeps the pid and gets the secrets, stdin, and not the token', async () => {
    const r = await wrapper(
      `
      console.log(process.pid);
      execInPlace('sh', ['-c', 'printf "%s\\n" "pid=$$" "secret=$FAKE_SECRET" "token=\${COFFER_TOKEN:-none}"; read -r line; echo "stdin=$line"'],
        { FAKE_SECRET: 'fake-secret-value' }, { preserveEnv: false, drop: ['COFFER_TOKEN'] });
      console.log('still here');
      `,
      'hello from stdin\n',
    )
    assert.equal(r.code, 0, r.stderr)
    const seen = Object.fromEntries(r.lines.slice(1).map((l) => l.split('=', 2) as [string, string]))
    assert.equal(Number(seen.pid), Number(r.lines[0]), 'the command has coffer’s pid: it replaced coffer')
    assert.equal(seen.secret, 'fake-secret-value')
    assert.equal(seen.token, 'none', 'COFFER_TOKEN dropped')
    assert.equal(seen.stdin, 'hello from stdin', 'stdin inherited and readable')
    assert.ok(!r.lines.includes('still here'))
  })

  test('the command gets default signals, nothing blocked, and stdio open and blocking', async () => {
    // grep is the command itself here: it reports its own signal state and stdin's flags.
    const r = await wrapper(
      `
      process.stdin; // opens stdin as Node does when a program reads it: O_NONBLOCK on the pipe
      console.log(JSON.stringify(self()));
      execInPlace('grep', ['-hE', '^(SigIgn|SigBlk|flags):', '/proc/self/status', '/proc/self/fdinfo/0'], {}, { preserveEnv: false });
      `,
      '',
    )
    assert.equal(r.code, 0, r.stderr)
    const before = JSON.parse(r.lines[0] ?? '{}') as { sigIgn: string; stdin: number; stdout: number }
    // The test means something only if Node set these on itself first.
    assert.ok((BigInt(before.sigIgn) & SIGPIPE_BIT) !== 0n, 'Node ignores SIGPIPE before the exec')
    assert.ok((before.stdin & O_NONBLOCK) !== 0, 'stdin is non-blocking before the exec')
    assert.ok((before.stdout & O_CLOEXEC) !== 0, 'Node marks stdout close-on-exec')
    const after = Object.fromEntries(r.lines.slice(1).map((l) => l.split(/:\s*/, 2) as [string, string]))
    assert.equal(BigInt(`0x${after.SigIgn}`), 0n, 'no signal ignored')
    assert.equal(BigInt(`0x${after.SigBlk}`), 0n, 'no signal blocked')
    assert.equal(Number.parseInt(after.flags ?? '', 8) & O_NONBLOCK, 0, 'stdin blocking')
    assert.ok(after.flags !== undefined, 'stdout stayed open across the exec (grep wrote to it)')
  })

  test('a failed exec returns false and leaves the process as it was', async () => {
    const notExecutable = join(dir, 'not-executable')
    writeFileSync(notExecutable, '#!/bin/sh\necho ran\n')
    chmodSync(notExecutable, 0o644)
    const r = await wrapper(
      `
      process.stdin;
      const before = self();
      const results = [
        execInPlace(${JSON.stringify(notExecutable)}, [], {}, { preserveEnv: false }),
        execInPlace('definitely-not-a-command-xyz', [], {}, { preserveEnv: false }),
        execInPlace(${JSON.stringify(dir)}, [], {}, { preserveEnv: false }),
      ];
      console.log(JSON.stringify({ before, after: self(), results }));
      `,
      '',
    )
    assert.equal(r.code, 0, r.stderr)
    const { before, after, results } = JSON.parse(r.lines[0] ?? '{}') as {
      before: Record<string, unknown>
      after: Record<string, unknown>
      results: unknown[]
    }
    assert.deepEqual(results, [false, false, false])
    assert.deepEqual(after, before, 'signals, mask and stdio flags restored')
  })

  test('a secret that cannot be a variable is refused before anything starts, without its value', async () => {
    const r = await wrapper(
      `
      try { execInPlace('true', [], { BAD: 'fake\\u0000value' }, { preserveEnv: false }) }
      catch (err) { console.log(err.name + ': ' + err.message) }
      `,
      '',
    )
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.lines[0], 'SecretEnvironmentError: secret BAD contains a NUL character and cannot be passed in the environment')
  })
})

describe('commandPath: the file execvp would run', () => {
  const a = join(dir, 'path-a')
  const b = join(dir, 'path-b')
  mkdirSync(a)
  mkdirSync(b)
  writeFileSync(join(a, 'tool'), '#!/bin/sh\n', { mode: 0o644 })
  writeFileSync(join(b, 'tool'), '#!/bin/sh\n', { mode: 0o755 })
  mkdirSync(join(a, 'folder'))
  writeFileSync(join(b, 'folder'), '#!/bin/sh\n', { mode: 0o755 })

  test('the first executable regular file in PATH order', () => {
    assert.equal(commandPath('tool', `${a}:${b}`), join(b, 'tool'), 'a non-executable file is passed over')
    assert.equal(commandPath('folder', `${a}:${b}`), join(b, 'folder'), 'a folder is passed over')
    assert.equal(commandPath('tool', a), undefined)
    assert.equal(commandPath('nothing-here', `${a}:${b}`), undefined)
  })

  test('a name with a slash is used as it is; an empty PATH entry is the current folder', () => {
    assert.equal(commandPath('./x/y', ''), './x/y')
    assert.equal(commandPath('/bin/sh', a), '/bin/sh')
    const cwd = process.cwd()
    process.chdir(b)
    try {
      assert.equal(commandPath('tool', `${a}::/nonexistent`), './tool')
    } finally {
      process.chdir(cwd)
    }
  })

  test('without PATH, /usr/bin and /bin', () => {
    assert.equal(commandPath('sh', undefined)?.endsWith('/sh'), true)
  })
})
