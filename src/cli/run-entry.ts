import { type RunHooks, run } from './commands/run.js'
import { report } from './report.js'
import { parseRunArgs } from './run-argv.js'

// `coffer run` without commander or the command table: bin/coffer.js loads this module's
// bundle (dist/run.cjs, built on its own by scripts/build.mjs) for `coffer run …`, the command
// that starts before every process it wraps. The full CLI (entry.ts) runs it the same way.

/**
 * Runs `coffer run` from `argv` (process.argv) when parseRunArgs reads its arguments, and ends
 * the process with the command's exit code, or sets the exit code of a failure as main() does.
 * Returns false, having done nothing, for any other command line: the full CLI takes it then.
 * `hooks.beforeStart` runs just before the command starts (see RunHooks).
 */
export async function runFast(argv: readonly string[], hooks?: RunHooks): Promise<boolean> {
  if (argv[2] !== 'run') return false
  const parsed = parseRunArgs(argv.slice(3))
  if (!parsed) return false
  let code: number
  try {
    code = await run(parsed.command, parsed.opts, hooks)
  } catch (err) {
    process.exitCode = await report(err)
    return true
  }
  process.exit(code)
}
