// The Debian packages the test suite needs beyond Node.js, and how to get them. The browser,
// HSM and keychain suites never skip, so a machine without these packages would report
// failures that have nothing to do with the code: check first, install when we may, and
// otherwise stop with one message that says what to run.
import { spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Each command the tests run, and the Debian package that provides it. */
export const SYSTEM_DEPS = [
  { command: 'chromium', pkg: 'chromium' },
  { command: 'softhsm2-util', pkg: 'softhsm2' },
  { command: 'gnome-keyring-daemon', pkg: 'gnome-keyring' },
  { command: 'dbus-run-session', pkg: 'dbus' },
  // promtool checks and unit-tests the alert rules in deploy/prometheus (test/deploy). The
  // package also holds a Prometheus server, which apt may start where services may start.
  { command: 'promtool', pkg: 'prometheus' },
]

function isExecutable(path) {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

function onPath(command, env) {
  return (env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && isExecutable(join(dir, command)))
}

/** The packages whose command is not found on PATH (CHROMIUM_PATH, as the browser tests read it, also counts for chromium). */
export function missingPackages(env = process.env) {
  return SYSTEM_DEPS.filter(({ command }) => {
    if (command === 'chromium' && env.CHROMIUM_PATH && isExecutable(env.CHROMIUM_PATH)) return false
    return !onPath(command, env)
  }).map(({ pkg }) => pkg)
}

/**
 * Makes sure every package is there. Missing ones are installed with apt-get when running as
 * root on a machine that has it; otherwise, or if the install fails, this throws an Error whose
 * message names the packages and the command that installs them. It never returns with a
 * package still missing.
 */
export function ensureSystemDeps(env = process.env) {
  const missing = missingPackages(env)
  if (missing.length === 0) return
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  const install = `apt-get update && apt-get install -y ${missing.join(' ')}`
  const advice = isRoot ? install : `sudo sh -c '${install}'`
  if (isRoot && onPath('apt-get', env)) {
    console.log(`system-deps: installing ${missing.join(' ')} (Debian packages the tests need) with apt-get`)
    const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' }
    // apt's own chatter (debconf notes) is shown only when something went wrong.
    let output = ''
    for (const args of [
      ['update', '-qq'],
      ['install', '-y', '-qq', ...missing],
    ]) {
      const r = spawnSync('apt-get', args, { encoding: 'utf8', env: aptEnv, stdio: ['ignore', 'pipe', 'pipe'] })
      output += `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `${r.error.message}\n` : ''}`
      if (r.status !== 0) break
    }
    if (missingPackages(env).length === 0) return
    process.stderr.write(output)
    throw new Error(`apt-get could not install the Debian packages the tests need (${missing.join(' ')}); run: ${install}`)
  }
  throw new Error(`the tests need Debian packages that are missing (${missing.join(' ')}); install them with: ${advice}`)
}

// Run directly (`node scripts/system-deps.mjs`): check, install if allowed, exit 1 with the message otherwise.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    ensureSystemDeps()
  } catch (err) {
    console.error(`system-deps: ${err.message}`)
    process.exit(1)
  }
}
