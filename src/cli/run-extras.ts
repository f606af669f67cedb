import type { ChildProcess } from 'node:child_process'
import { constants as osConstants } from 'node:os'
import { CofferApiError, type Scope } from '../client/client.js'
import type { Fetched, Source } from './commands/run.js'
import { unreachable } from './commands/run.js'
import { ExitError } from './exit-error.js'
import type { RunOptions } from './run-argv.js'
import { bindingOf, loadSnapshot, parseMaxAge, saveSnapshot, snapshotPath } from './run-fallback.js'
import { type Mount, mountFormat, mountSecrets } from './run-mount.js'
import { buildChildEnv, exitCodeOf, FORWARDED_SIGNALS, runWithSecrets, spawnError, validateSecrets } from './run-process.js'
import { resolveScopes } from './run-scopes.js'

// `coffer run` with --fallback, --mount or --watch: loaded only when one of them is given, so a
// plain `coffer run` starts as fast as before.
//
// --watch: one event stream per environment (GET …/events: keys and versions, never values,
// and a digest of each environment its values import or reference, which the server follows).
// When the versions differ from those last fetched — or the stream reconnects, since changes may
// have been missed — the values are fetched again after a quiet `--watch-debounce` (200 ms);
// if they changed, the command gets `--watch-signal` (SIGTERM), coffer waits for it to exit
// (SIGKILL after 10 s) and starts it again with the new values. A dropped stream reconnects
// with a pause doubling from 250 ms to 10 s; a refused one (a revoked or expired token, lost
// access) stops watching with a warning and leaves the command running. The command exiting by
// itself ends `coffer run` with its exit code, as without --watch.

const STOPPING_SIGNALS: ReadonlySet<NodeJS.Signals> = new Set(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'])
const KILL_AFTER_MS = 10_000

function warn(message: string): void {
  process.stderr.write(`coffer: warning: ${message}\n`)
}

/** --watch-signal: a signal name (SIGTERM, or TERM) that this platform knows. */
export function watchSignal(text: string | undefined): NodeJS.Signals {
  if (text === undefined) return 'SIGTERM'
  const name = (text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`) as NodeJS.Signals
  if (!(name in osConstants.signals))
    throw new ExitError(`--watch-signal: "${text}" is not a signal (e.g. SIGTERM, SIGHUP, SIGINT)`, { code: 'ERR_USAGE' })
  return name
}

function debounceOf(text: string | undefined): number {
  if (text === undefined) return 200
  if (!/^\d{1,6}$/.test(text)) throw new ExitError(`--watch-debounce: "${text}" is not a number of milliseconds`, { code: 'ERR_USAGE' })
  return Number(text)
}

function sameSecrets(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  return ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k])
}

function sameVersions(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number> | undefined): boolean {
  if (!b || a.size !== b.size) return false
  for (const [k, v] of a) if (b.get(k) !== v) return false
  return true
}

/** Runs the command with --fallback, --mount and --watch as given; resolves with its exit code. */
export async function runWithExtras(
  command: string,
  args: string[],
  source: Source,
  opts: RunOptions,
  drop: readonly string[],
): Promise<number> {
  // Every option is checked before anything is fetched or written.
  const format = opts.mount !== undefined ? mountFormat(opts.format) : undefined
  const signal = watchSignal(opts.watchSignal)
  const debounceMs = debounceOf(opts.watchDebounce)
  if (opts.watch && opts.fallbackOnly)
    throw new ExitError('--watch needs the server; it cannot be used with --fallback-only', { code: 'ERR_USAGE' })
  const fallback =
    opts.fallback !== undefined || opts.fallbackOnly
      ? (() => {
          const binding = bindingOf(source.client.url, source.plan.workspace, source.plan.layers, source.token)
          return { binding, path: snapshotPath(opts.fallback ?? true, binding), maxAgeMs: parseMaxAge(opts.fallbackMaxAge) }
        })()
      : undefined
  const save = (secrets: Record<string, string>) => {
    if (!fallback) return
    try {
      saveSnapshot(fallback.path, source.token, fallback.binding, secrets, Date.now())
    } catch (err) {
      warn(`could not write the fallback snapshot ${fallback.path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
    }
  }
  const fromSnapshot = (why: string): Fetched => {
    let s: ReturnType<typeof loadSnapshot>
    try {
      s = loadSnapshot(fallback!.path, source.token, fallback!.binding, fallback!.maxAgeMs, Date.now())
    } catch (err) {
      throw new ExitError(`${why}, and ${(err as Error).message}`, { code: (err as ExitError).code ?? 'ERR_FALLBACK_UNAVAILABLE' })
    }
    const minutes = Math.round((Date.now() - s.savedAt) / 60_000)
    warn(`${why}: using the fallback snapshot from ${minutes} min ago (${fallback!.path})`)
    return { secrets: s.secrets, versions: [] }
  }

  let fetched: Fetched
  if (opts.fallbackOnly) fetched = fromSnapshot('--fallback-only')
  else {
    try {
      fetched = await source.fetch()
      save(fetched.secrets)
    } catch (err) {
      // Only an unreachable server (no connection, a timeout, 502/503/504): never a refusal (401, 403, 404).
      if (!fallback || !unreachable(err)) throw err
      fetched = fromSnapshot(`the server is unreachable (${(err as Error).message})`)
    }
  }
  // The file is written once the signal listeners are in place: a signal that arrived between the
  // two would end coffer by its default action and leave the file behind.
  const mounted: { mount?: Mount } = {}
  const mount = () => {
    if (opts.mount !== undefined) mounted.mount = mountSecrets(opts.mount, format!, fetched.secrets)
  }
  try {
    if (!opts.watch)
      return await runWithSecrets(command, args, fetched.secrets, { preserveEnv: !!opts.preserveEnv, drop, beforeSpawn: mount })
    return await supervise(command, args, source, fetched, {
      signal,
      debounceMs,
      preserveEnv: !!opts.preserveEnv,
      drop,
      mount,
      mounted,
      save,
    })
  } finally {
    mounted.mount?.remove()
  }
}

interface WatchOptions {
  signal: NodeJS.Signals
  debounceMs: number
  preserveEnv: boolean
  drop: readonly string[]
  /** Writes the --mount file (if any) into `mounted`; called once the signal listeners are in place. */
  mount: () => void
  mounted: { mount?: Mount }
  save: (secrets: Record<string, string>) => void
}

/** The command under --watch: started, restarted on a change, and its exit code once it exits by itself or on a signal to coffer. */
async function supervise(command: string, args: string[], source: Source, first: Fetched, o: WatchOptions): Promise<number> {
  const { spawn } = await import('node:child_process')
  let secrets = first.secrets
  let versions = first.versions
  let current: ChildProcess | undefined
  let restarting = false
  let stopping = false
  let closed = false
  const handles: Array<{ close: () => void }> = []
  const timers = new Set<NodeJS.Timeout>()
  let settle!: { resolve: (code: number) => void; reject: (err: unknown) => void }
  const finished = new Promise<number>((resolve, reject) => {
    settle = { resolve, reject }
  })

  const start = () => {
    validateSecrets(secrets)
    const child = spawn(command, args, {
      stdio: 'inherit',
      env: buildChildEnv(secrets, { preserveEnv: o.preserveEnv, drop: o.drop }),
      shell: false,
    })
    current = child
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (child !== current) return
      current = undefined
      settle.reject(spawnError(command, err))
    })
    child.once('exit', (code, sig) => {
      if (child !== current) return
      current = undefined
      if (!restarting) settle.resolve(exitCodeOf(code, sig))
    })
  }

  const restart = async () => {
    restarting = true
    const child = current
    let code = 0
    if (child) {
      const exited = new Promise<number>((r) => child.once('exit', (c, s) => r(exitCodeOf(c, s))))
      child.kill(o.signal)
      const kill = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS)
      code = await exited
      clearTimeout(kill)
    }
    restarting = false
    if (stopping) settle.resolve(code)
    else start()
  }

  // Changes: fetched again after a quiet debounce; the command restarts only when a value changed.
  let debounce: NodeJS.Timeout | undefined
  let busy = false
  let pending = false
  const changed = () => {
    clearTimeout(debounce)
    debounce = setTimeout(() => void refresh(), o.debounceMs)
  }
  const refresh = async () => {
    if (busy) {
      pending = true
      return
    }
    busy = true
    try {
      do {
        pending = false
        let next: Fetched
        try {
          next = await source.fetch()
        } catch (err) {
          warn(`could not fetch the changed secrets (${(err as Error).message}); the command keeps its values`)
          break
        }
        versions = next.versions
        if (sameSecrets(next.secrets, secrets)) continue
        secrets = next.secrets
        o.save(secrets)
        o.mounted.mount?.update(secrets)
        if (stopping || closed) break
        await restart()
      } while (pending && !stopping && !closed)
    } finally {
      busy = false
    }
  }

  const later = (fn: () => void, ms: number) => {
    const t = setTimeout(() => {
      timers.delete(t)
      fn()
    }, ms)
    timers.add(t)
  }

  const dependencies: string[] = []
  const watchOne = (scope: Scope, i: number) => {
    let backoff = 250
    let everOpened = false
    const connect = () => {
      if (closed) return
      let opened = false
      const handle = source.client.watchEnvironment(scope, (state) => {
        const reconnected = !opened && everOpened
        opened = true
        everOpened = true
        backoff = 250
        const now = new Map(state.secrets.map((s) => [s.key, s.version]))
        // The environments its values import or reference: a change there is a change here. The
        // first answer naming some is checked too (they may have changed since the fetch).
        const deps = JSON.stringify(state.dependencies ?? [])
        const depsChanged = deps !== (dependencies[i] ?? '[]')
        dependencies[i] = deps
        // After a reconnection, fetch again whatever the versions say: changes may have been missed.
        if (reconnected || depsChanged || !sameVersions(now, versions[i])) changed()
      })
      handles.push(handle)
      handle.done.then(
        () => {},
        (err: unknown) => {
          if (closed) return
          if (err instanceof CofferApiError && err.status < 500) {
            warn(`--watch stopped for ${scope.project}/${scope.environment}: ${err.message} (${err.code}); the command keeps running`)
            return
          }
          later(connect, backoff + Math.floor(Math.random() * 100))
          backoff = Math.min(backoff * 2, 10_000)
        },
      )
    }
    connect()
  }

  // The scopes are known once a fetch reached the server; started from a snapshot, they are resolved when it answers.
  const watchAll = async () => {
    let backoff = 250
    while (!source.scopes && !closed) {
      try {
        source.scopes = await resolveScopes(source.client, source.plan)
      } catch (err) {
        if (!unreachable(err)) {
          warn(`--watch cannot start: ${(err as Error).message}`)
          return
        }
        await new Promise<void>((r) => later(r, backoff))
        backoff = Math.min(backoff * 2, 10_000)
      }
    }
    source.scopes?.forEach(watchOne)
  }

  const listeners = new Map<NodeJS.Signals, () => void>()
  for (const sig of FORWARDED_SIGNALS) {
    const listener = () => {
      if (STOPPING_SIGNALS.has(sig)) stopping = true
      const child = current
      if (child && child.exitCode === null && child.signalCode === null) {
        try {
          child.kill(sig)
        } catch {
          // Exited between the check and the kill.
        }
      } else if (stopping && !restarting) settle.resolve(128 + (osConstants.signals[sig] ?? 0))
    }
    try {
      process.on(sig, listener)
      listeners.set(sig, listener)
    } catch {
      // Not supported on this platform.
    }
  }

  try {
    o.mount()
    start()
    void watchAll()
    return await finished
  } finally {
    closed = true
    clearTimeout(debounce)
    for (const t of timers) clearTimeout(t)
    for (const h of handles) h.close()
    for (const [sig, l] of listeners) process.removeListener(sig, l)
  }
}
